"""Bench of the frame parser (tickwire.hw.feed.FrameParser)."""
