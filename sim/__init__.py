"""tickwire.sim"""
