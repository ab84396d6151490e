"""Bench of the ITCH 5.0 decoder (tickwire.hw.feed.ItchDecoder)."""
