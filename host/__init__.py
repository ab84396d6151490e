"""tickwire.host"""
