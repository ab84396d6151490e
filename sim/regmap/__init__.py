"""Benches of the register file (tickwire.hw.regmap): the model checks shared by the Amaranth
simulator tests and the cocotb bench, the Amaranth harness, the cocotb bench."""
