"""What a build is: digests of the sources and the BUILD_ID the gateware returns.

``BUILD_ID`` (register BUILD_ID, and the manifest of every board project) is the first 32 bits
of a SHA-256 over the gateware's sources and the build's parameters (target, clock,
capacities), so two bitstreams with the same register map can be told apart by the host.

Which sources: the gateware model (``hw/`` without ``hw/board/``, ``spec/``,
``host/config.py``: the files the RTL harness's cache key covers too, see
``tickwire.sim.fastsim.MODEL_SOURCES``) for every build; board builds add ``hw/board/``
(wrapper, Tcl, constraints), which the Verilated appliance does not contain.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

__all__ = ["gateware_files", "source_digest", "build_id", "params_text", "rtl_build_id",
           "KERNEL", "VLNV"]

#: the kernel's (and IP's) name, and the IP's VLNV (what a PYNQ driver binds to)
KERNEL = "tickwire"
VLNV = f"tickwire.dev:tickwire:{KERNEL}:1.0"

_HW = Path(__file__).resolve().parent.parent          # tickwire.hw
_BOARD = Path(__file__).resolve().parent              # tickwire.hw.board


def gateware_files(*, board: bool = False) -> list[tuple[str, Path]]:
    """``(name, path)`` of the sources a build depends on, names relative to their package
    (stable between a checkout and an installed package)."""
    import tickwire.host.config as cfg
    import tickwire.spec as spec
    out = []
    for p in sorted(_HW.rglob("*.py")):
        if _BOARD in p.parents and not board:
            continue
        out.append((f"hw/{p.relative_to(_HW).as_posix()}", p))
    spec_dir = Path(spec.__file__).resolve().parent
    out += [(f"spec/{p.relative_to(spec_dir).as_posix()}", p)
            for p in sorted(spec_dir.rglob("*.py"))]
    out.append(("host/config.py", Path(cfg.__file__).resolve()))
    return out


def source_digest(*, board: bool = False) -> str:
    """SHA-256 (hex) of the sources' names and contents."""
    h = hashlib.sha256()
    for name, path in gateware_files(board=board):
        data = path.read_bytes()
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def params_text(params: dict) -> str:
    """The build parameters in a canonical form (sorted JSON)."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def build_id(params: dict, digest: str) -> int:
    """BUILD_ID of a build with ``params`` (target, clock, capacities...) from sources of
    ``digest``: 32 bits, never 0 (0 reads as "no build id given")."""
    h = hashlib.sha256(f"{digest}\0{params_text(params)}".encode()).digest()
    return int.from_bytes(h[:4], "big") or 1


def rtl_build_id(depth: int, symbols: int) -> int:
    """BUILD_ID of the Verilated appliance (``tickwire.backends.rtl.harness``): the RTL
    target's parameters over the gateware model's sources (the harness cache key's files)."""
    from .targets import RTL
    return build_id(RTL.params({"symbols": symbols}) | {"depth": depth}, source_digest())
