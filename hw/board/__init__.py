"""Board projects: the appliance as a vendor project for PYNQ (Zynq UltraScale+) and Alveo
(XRT) boards.

* :mod:`.targets`: per board, the part, clocks, network cages, memory, default capacities;
* :mod:`.identity`: source digests and the BUILD_ID the gateware returns;
* :mod:`.wrapper`: the kernel top (``ap_clk``, ``ap_rst_n``, ``s_axi_control``, AXI4-Stream
  feeds, orders and book rows) around the appliance;
* :mod:`.tcl`: Vivado/Vitis Tcl (IP packaging, PYNQ block design, ``package_xo`` and the
  ``v++`` link configuration), constraints;
* :mod:`.project`: ``tickwire board build``: writes all of it with ``build.sh`` and
  ``manifest.json``, and runs the vendor tools when they are on PATH.
"""
