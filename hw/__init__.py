"""tickwire.hw"""
