"""tickwire.hw.regmap: the register map, described once (:mod:`tickwire.spec.regmap`), and what is
generated from it: the AXI4-Lite register file (:mod:`.axil`, needs Amaranth), the host driver
(:mod:`tickwire.host.driver`) and the Markdown/C-header reference (:mod:`.generate`).

Importing this package does not import Amaranth (the host driver uses the description on
boards without the toolchain); ``RegisterFile`` and ``AXI4LiteSignature`` load on first use.
"""

from tickwire.spec.regmap import (CAPACITY_DEFAULTS, MAP_ID, MAP_VERSION, REGMAP, Block, Field,
                          Register, RegisterMap, Table)

__all__ = ["REGMAP", "MAP_ID", "MAP_VERSION", "CAPACITY_DEFAULTS", "Field", "Register", "Table",
           "Block", "RegisterMap", "RegisterFile", "AXI4LiteSignature"]


def __getattr__(name):
    if name in ("RegisterFile", "AXI4LiteSignature"):
        from . import axil
        return getattr(axil, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
