"""tickwire.spec: the facts every part of tickwire shares, written once.

Plain Python (no numba, no Amaranth), so a board host imports it without the emulator or the
HDL toolchain: counter names (:mod:`.counters`), capacities and their defaults
(:mod:`.capacity`), symbol and address encodings (:mod:`.values`), the mapping of the risk
configuration onto the hardware (:mod:`.risk`) and the register map (:mod:`.regmap`).
The gateware (``hw/``), the emulator (``host/emu/``), the driver and the benches read them
from here.
"""
