"""tickwire.models"""
