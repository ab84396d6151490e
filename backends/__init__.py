"""tickwire.backends"""
