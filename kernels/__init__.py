"""tickwire.kernels"""
