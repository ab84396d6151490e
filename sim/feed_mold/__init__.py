"""Bench of the whole feed (tickwire.hw.feed.FeedFrontEnd): two lines, MoldUDP64 A/B
arbitration and sequence tracking, decoded output."""
