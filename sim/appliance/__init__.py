"""cocotb bench of the appliance (hw/appliance.py): AXI4-Lite register file + whole pipeline."""
