"""Fast RTL simulation: a generated Verilator C++ harness that streams records through a design.

cocotb drives a design one cycle at a time from Python, which is right for benches but too slow
to replay a whole capture. Here the stimulus is written to a file, a C++ harness (generated for
the design's stream ports, compiled once per design and cached) clocks the Verilated model as
fast as it runs, and every output-stream handshake is written back to a file.

Streams are Amaranth ``lib.stream`` ports (``<name>__payload``, ``__valid``, ``__ready``);
plain input ports can be set before the run (``statics``). Records are payloads packed into
little-endian bytes, LSB first (``pack_bits``/``unpack_bits``). An AXI4 master port of the
design (``hw.axi``) can be served by a memory model in the harness (``AxiPort``; latency and
back-pressure chosen per run with ``AxiTiming``, statistics returned with the outputs).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("TICKWIRE_SIM_BUILD", ROOT / "sim_build")) / "fastsim"


@dataclass
class StreamPort:
    name: str            # Verilog prefix, e.g. "i" for i__payload/i__valid/i__ready
    width: int           # payload bits
    has_ready: bool = True
    #: payload split over several ports (suffix, width), LSB first; default one "payload"
    fields: list[tuple[str, int]] | None = None

    @property
    def nbytes(self) -> int:
        return (self.width + 7) // 8

    def ports(self) -> list[tuple[str, int]]:
        return [(f"{self.name}__{n}", w) for n, w in (self.fields or [("payload", self.width)])]


@dataclass
class AxiPort:
    """An AXI4 master port of the design (``hw.axi.AXI4Signature``) that the harness serves
    as a memory: ``size_bytes`` zero-initialised bytes at address 0 (allocated lazily, so a
    large memory costs only the pages touched). The memory persists across the runs of a
    :class:`Server`. Bursts must be INCR of whole, aligned bus words within the memory and
    within one 4 KiB page; anything else stops the run with an error naming the port."""
    prefix: str          # Verilog prefix, e.g. "mem" for mem__ar__valid ...
    addr_width: int
    data_width: int      # bus bits, a power of two, 32..1024
    id_width: int = 1
    size_bytes: int = 1 << 27

    def __post_init__(self):
        if self.data_width < 32 or self.data_width > 1024 or \
                self.data_width & (self.data_width - 1):
            raise ValueError(f"AXI port {self.prefix}: data_width={self.data_width} must be a "
                             "power of two in 32..1024")
        if not 0 < self.size_bytes <= 1 << self.addr_width:
            raise ValueError(f"AXI port {self.prefix}: size_bytes={self.size_bytes} must be in "
                             f"1..2**addr_width")
        if not 1 <= self.id_width <= 32 or not 1 <= self.addr_width <= 64:
            raise ValueError(f"AXI port {self.prefix}: id_width 1..32, addr_width 1..64")


@dataclass(frozen=True)
class AxiTiming:
    """Run-time behaviour of the harness's AXI memories (one build serves all).

    ``latency``: cycles from a read's AR handshake to its first R beat, and from a write's
    last W beat (or its AW, if later) to its B; at least 1. ``backpressure``: fraction of
    cycles (0..1) on which each of AR/AW/W ready is low and a new R beat or B is withheld,
    drawn from a generator seeded by ``seed``. A write reaches the memory when its B is
    taken; an R beat reads the memory when first presented, so a read whose AR follows a
    write's B sees that write (AXI's guarantee) and one that does not may not."""
    latency: int = 40     # about 125 ns at 322 MHz
    backpressure: float = 0.0
    seed: int = 1

    def __post_init__(self):
        if not isinstance(self.latency, int) or self.latency < 1:
            raise ValueError(f"AXI latency={self.latency!r}: must be an integer >= 1")
        if not 0.0 <= self.backpressure <= 1.0:
            raise ValueError(f"AXI backpressure={self.backpressure!r}: must be in 0..1")

    def args(self) -> list[str]:
        thr = min(1 << 32, round(self.backpressure * (1 << 32)))
        return [str(self.latency), str(thr), str(int(self.seed) & ((1 << 64) - 1))]


#: statistics of each AXI memory over a run, in the order the harness writes them: bursts
#: (AR/AW handshakes), beats (R/W handshakes), cycles a master's valid met a low ready
#: (ar/aw/w stalls; r_stalls: an R beat the master did not take) and the most read bursts
#: accepted and not yet fully returned at once
AXI_STATS = ("reads", "writes", "read_beats", "write_beats", "ar_stalls", "aw_stalls",
             "w_stalls", "r_stalls", "max_reads_outstanding")


@dataclass
class Harness:
    """A design and the stream ports the harness drives/collects."""
    name: str
    verilog: str
    inputs: list[StreamPort]
    outputs: list[StreamPort]
    statics: dict[str, int] = field(default_factory=dict)  # plain input ports: width
    drains: list[str] = field(default_factory=list)  # output streams held ready, not recorded
    #: ports written one record per cycle right after reset (host set-up writes), then 0
    pulses: list[tuple[str, int]] = field(default_factory=list)
    #: output ports read once at the end of the run (counters), each as 8 bytes
    observe: list[str] = field(default_factory=list)
    #: build key computed without the Verilog (see source_key); ``verilog`` may then be a
    #: callable that produces it only when a build is needed
    key: str = ""
    clock: str = "clk"
    reset: str = "rst"
    #: prefix of an AXI4-Lite slave port group the harness drives as a bus master (ops
    #: passed to :func:`run` as ``bus_ops``), or None
    axil: str | None = None
    #: AXI4 master ports of the design the harness serves as memories (see :class:`AxiPort`)
    axi: list[AxiPort] = field(default_factory=list)


_CPP_KEYWORDS = {"auto", "break", "case", "char", "class", "const", "continue", "default",
                 "delete", "do", "double", "else", "enum", "explicit", "extern", "float", "for",
                 "friend", "goto", "if", "inline", "int", "long", "new", "operator", "private",
                 "protected", "public", "register", "return", "short", "signed", "sizeof",
                 "static", "struct", "switch", "template", "this", "throw", "try", "typedef",
                 "union", "unsigned", "virtual", "void", "volatile", "while", "bool", "true",
                 "false", "namespace", "using", "catch", "mutable", "typename"}


def _cname(port: str) -> str:
    """The C++ member Verilator gives a port: "__" is escaped as "___05F", C++ keywords get a
    "__SYM__" prefix."""
    if port in _CPP_KEYWORDS:
        return "__SYM__" + port
    return port.replace("__", "___05F")


def _ctype(width: int) -> str:
    return "CData" if width <= 8 else "SData" if width <= 16 else "IData" if width <= 32 \
        else "QData" if width <= 64 else "WData"


def _set(port: str, width: int, src: str) -> str:
    """C++ statement setting port from a byte pointer ``src``."""
    port = _cname(port)
    # Verilator does not mask inputs: bits beyond the port's width must be cleared
    if width <= 64:
        mask = "~0ull" if width == 64 else f"{(1 << width) - 1}ull"
        return (f"{{ uint64_t v = 0; memcpy(&v, {src}, {(width + 7) // 8}); "
                f"top->{port} = v & {mask}; }}")
    words = (width + 31) // 32
    top_mask = (1 << (width - 32 * (words - 1))) - 1
    return (f"{{ uint32_t w[{words}] = {{0}}; memcpy(w, {src}, {(width + 7) // 8}); "
            f"w[{words - 1}] &= {top_mask}u; "
            f"for (int k = 0; k < {words}; k++) top->{port}[k] = w[k]; }}")


def _offsets(ports):
    sh = 0
    for port, w in ports:
        yield port, w, sh
        sh += w


def _set_bits(port: str, width: int, src: str, shift: int) -> str:
    """Set ``port`` from ``width`` bits at bit ``shift`` of the little-endian bytes ``src``."""
    if shift == 0:
        return _set(port, width, src)
    port = _cname(port)
    words = (width + 31) // 32
    return (f"{{ for (int k = 0; k < {words}; k++) {{ uint32_t w = 0; "
            f"for (int b = 0; b < 32 && k * 32 + b < {width}; b++) {{ int bit = {shift} + k * 32 + b; "
            f"w |= (uint32_t)((({src})[bit >> 3] >> (bit & 7)) & 1) << b; }} "
            + (f"top->{port}[k] = w; }} }}" if width > 64 else
               f"if (k == 0) top->{port} = w; else top->{port} |= (uint64_t)w << 32; }} }}"))


def _get(port: str, width: int, dst: str) -> str:
    port = _cname(port)
    if width <= 64:
        return f"{{ uint64_t v = top->{port}; memcpy({dst}, &v, {(width + 7) // 8}); }}"
    words = (width + 31) // 32
    return (f"{{ uint32_t w[{words}]; for (int k = 0; k < {words}; k++) w[k] = top->{port}[k]; "
            f"memcpy({dst}, w, {(width + 7) // 8}); }}")


def _pulse_bytes(h: Harness) -> int:
    return (sum(w for _, w in h.pulses) + 7) // 8


#: C++ compiler flags of the model and harness (see the README's "RTL simulation speed"):
#: -O3 for the model's hot code too (verilated.mk's OPT_FAST is -Os), tuned for this CPU (a
#: build is cached per CPU model, see :func:`_cpu_id`)
BUILD_FLAGS = ("-CFLAGS", "-O3", "-CFLAGS", "-march=native", "-MAKEFLAGS", "OPT_FAST=-O3")


def _cpu_id() -> str:
    """The CPU model and feature flags (a -march=native build runs only where it was built)."""
    import platform
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine()
    pick = [ln for ln in info if ln.startswith(("model name", "flags", "Features"))]
    return platform.machine() + "".join(dict.fromkeys(pick))

#: Top module of the build: the design under a wrapper (see :func:`_wrapper`)
_TOP = "tw_harness_top"
#: Cycles the wrapper holds the design in reset after start-up
RESET_CYCLES = 4


def _ports(verilog: str, module: str) -> list[tuple[str, str, str]]:
    """(direction, range, name) of the ports of ``module`` in Yosys-written Verilog."""
    import re
    start = re.search(rf"^module {re.escape(module)}\(", verilog, re.M)
    if start is None:
        raise ValueError(f"no module {module!r} in the Verilog")
    end = verilog.index("\nendmodule", start.end())
    decl = re.compile(r"^\s*(input|output)\s+(\[[^\]]+\]\s*)?(\S+);", re.M)
    return [(m.group(1), (m.group(2) or "").strip(), m.group(3))
            for m in decl.finditer(verilog, start.end(), end)]


def _wrapper(h: Harness, verilog: str) -> str:
    """The design under a top that drives its reset from a counter instead of a port.

    Verilator evaluates every combinational function of a top-level input whenever the model
    is evaluated (its ``ico`` region, twice per cycle here); a synchronous reset reaches
    nearly every register's next-state logic, so with the reset a port that was most of the
    design, twice per cycle. Driven by a register, that logic runs once, after the clock
    edge. The reset is asserted for :data:`RESET_CYCLES` cycles after start-up, as the
    harness did through the port."""
    ports = _ports(verilog, h.name)
    if h.reset not in {n for _, _, n in ports}:
        raise ValueError(f"{h.name} has no reset port {h.reset!r}")
    outer = [(d, r, n) for d, r, n in ports if n != h.reset]
    lines = [f"module {_TOP}({', '.join(n for _, _, n in outer)});"]
    lines += [f"  {d} {r + ' ' if r else ''}{n};" for d, r, n in outer]
    cw = RESET_CYCLES.bit_length()
    lines += [f"  reg [{cw - 1}:0] tw_reset_left = {cw}'d{RESET_CYCLES};",
              f"  always @(posedge {h.clock}) if (tw_reset_left != 0) "
              f"tw_reset_left <= tw_reset_left - {cw}'d1;",
              f"  {h.name} dut (" + ", ".join(
                  [f".{n}({n})" for _, _, n in outer] + [f".{h.reset}(tw_reset_left != 0)"])
              + ");", "endmodule", ""]
    return "\n".join(lines)


def _harness_cpp(h: Harness) -> str:
    ins, outs = h.inputs, h.outputs
    lines = [
        '#include <cstdio>', '#include <cstdlib>', '#include <cstring>', '#include <cstdint>',
        '#include <vector>', f'#include "V{h.name}.h"', '#include "verilated.h"',
        *(['#include <cstdarg>', '#include <deque>'] if h.axi else []),
        'static std::vector<uint8_t> slurp(const char* p) {',
        '  FILE* f = fopen(p, "rb"); if (!f) { perror(p); exit(2); }',
        '  fseek(f, 0, SEEK_END); long n = ftell(f); fseek(f, 0, SEEK_SET);',
        '  std::vector<uint8_t> b(n); if (n && fread(b.data(), 1, n, f) != (size_t)n) exit(2);',
        '  fclose(f); return b; }',
        *_axi_globals(h),
        '// One run: argv holds statics.bin, then one input file per input stream, then one',
        '// output file per output stream, then max_cycles, idle_cycles, ready_mode (0 always,',
        # (harnesses with ``axi`` take, after the bus arguments, per port: latency,
        # back-pressure, seed, statistics file; see _axi_decl)
        '// else LFSR % 4), pulses.bin, [bus ops, bus results, settle], [observe]. The model',
        '// and the cycle count persist across runs (server mode).',
        f'static int run_once(V{h.name}* top, char** argv, unsigned long long& cyc) {{',
        '  int a = 0;',
        '  std::vector<uint8_t> st = slurp(argv[a++]);',
    ]
    off = 0
    for port, width in h.statics.items():
        lines.append(f"  {_set(port, width, f'st.data() + {off}')}")
        off += (width + 7) // 8
    for k, p in enumerate(ins):
        # record: u32 gap cycles before it, then payload bytes
        lines += [f'  std::vector<uint8_t> in{k} = slurp(argv[a++]);',
                  f'  size_t pos{k} = 0, gap{k} = 0; bool have{k} = false;']
    for k, p in enumerate(outs):
        lines.append(f'  FILE* out{k} = fopen(argv[a++], "wb");')
    for k, p in enumerate(ins):
        # the cycle each input record was taken (the host's timestamps of what it sent)
        lines.append(f'  FILE* ack{k} = fopen(argv[a++], "wb");')
    lines += [
        '  unsigned long long max_cycles = strtoull(argv[a++], 0, 10);',
        '  unsigned long long idle_max = strtoull(argv[a++], 0, 10);',
        '  unsigned ready_mode = strtoul(argv[a++], 0, 10);',
        '  uint32_t lfsr = 0xACE1u;',
        '  std::vector<uint8_t> pl = slurp(argv[a++]);',
        f'  for (size_t q = 0; q + {_pulse_bytes(h)} <= pl.size() && {_pulse_bytes(h)} > 0; '
        f'q += {_pulse_bytes(h)}) {{',
        *[f'    {_set_bits(port, w, "&pl[q]", sh)}' for port, w, sh in _offsets(h.pulses)],
        f'    top->{h.clock} = 0; top->eval(); top->{h.clock} = 1; top->eval();',
        '  }',
        *[f'  top->{_cname(port)} = 0;' for port, w in h.pulses if w <= 64],
        '  unsigned long long start = cyc, idle = 0, stuck = 0;',
    ]
    if h.axil:
        lines += _bus_decl(h)
    lines += _axi_decl(h)
    lines += [
        '  while (cyc - start < max_cycles) {',
        f'    top->{h.clock} = 0;',
    ]
    if h.axil:
        lines += _bus_drive(h)
    lines += _axi_drive(h)
    for k, p in enumerate(ins):
        rec = 4 + p.nbytes
        block = " && !bus_block" if h.axil else ""
        lines += [
            f'    if (!have{k} && pos{k} + {rec} <= in{k}.size(){block}) {{',
            f'      uint32_t g; memcpy(&g, &in{k}[pos{k}], 4); gap{k} = g; have{k} = true;',
            *[f'      {_set_bits(port, w, f"&in{k}[pos{k} + 4]", sh)}'
              for port, w, sh in _offsets(p.ports())],
            '    }',
            f'    top->{_cname(p.name + "__valid")} = have{k} && gap{k} == 0;',
        ]
    for k, p in enumerate(outs):
        if p.has_ready:
            lines += ['    lfsr = (lfsr >> 1) ^ (-(lfsr & 1u) & 0xB400u);',
                      f'    top->{_cname(p.name + "__ready")} = ready_mode == 0 ? 1 : '
                      f'((lfsr % 4) != 0);']
    for name in h.drains:
        lines.append(f'    top->{_cname(name + "__ready")} = 1;')
    lines.append('    top->eval();')
    lines.append('    bool busy = false, moved = false;')
    if h.axil:
        lines.append('    if (bus_pending) busy = moved = true;')
    for k, p in enumerate(ins):
        hs = f'top->{_cname(p.name + "__valid")}' + (
            f' && top->{_cname(p.name + "__ready")}' if p.has_ready else '')
        lines += [
            f'    if (have{k}) busy = true;',
            f'    bool fire_in{k} = {hs};',
            f'    if (fire_in{k}) moved = true;',
        ]
    for k, p in enumerate(outs):
        hs = f'top->{_cname(p.name + "__valid")}' + (
            f' && top->{_cname(p.name + "__ready")}' if p.has_ready else '')
        lines += [
            f'    if ({hs}) {{ uint8_t b[{p.nbytes}]; {_get(p.name + "__payload", p.width, "b")}',
            f'      fwrite(&cyc, 8, 1, out{k}); fwrite(b, 1, {p.nbytes}, out{k}); busy = true; '
            f'moved = true; }}',
        ]
    if h.axil:
        lines += _bus_sample(h)
    lines += _axi_sample(h)
    lines += [f'    top->{h.clock} = 1;', '    top->eval();']
    for k, p in enumerate(ins):
        rec = 4 + p.nbytes
        lines += [
            f'    if (have{k}) {{ if (gap{k} > 0) gap{k}--; '
            f'else if (fire_in{k}) {{ have{k} = false; pos{k} += {rec}; '
            f'fwrite(&cyc, 8, 1, ack{k}); }} }}',
        ]
    lines += [
        '    cyc++;',
        '    idle = busy ? 0 : idle + 1;',
        '    if (idle > idle_max) break;',
        '    stuck = moved ? 0 : stuck + 1;',
        '    if (stuck > 1000000) { fprintf(stderr, "stalled at cycle %llu\\n", cyc); return 3; }',
        '  }',
    ]
    for k in range(len(outs)):
        lines.append(f'  fclose(out{k});')
    for k in range(len(ins)):
        lines.append(f'  fclose(ack{k});')
    if h.axil:
        lines.append('  fclose(busf);')
    lines += _axi_end(h)
    if h.observe:
        lines.append('  FILE* obs = fopen(argv[a++], "wb");')
        for port in h.observe:
            lines.append(f'  {{ uint64_t v = top->{_cname(port)}; fwrite(&v, 8, 1, obs); }}')
        lines.append('  fclose(obs);')
    lines += ['  return 0; }', '']
    lines += [
        'int main(int argc, char** argv) {',
        '  Verilated::commandArgs(argc, argv);',
        f'  V{h.name}* top = new V{h.name};',
        # the wrapper holds the reset for its first RESET_CYCLES cycles
        f'  for (int r = 0; r < {RESET_CYCLES}; r++) {{ top->{h.clock} = 0; top->eval(); '
        f'top->{h.clock} = 1; top->eval(); }}',
        '  unsigned long long cyc = 0;',
        '  if (argc > 1 && strcmp(argv[1], "--serve") == 0) {',
        '    // server mode: one run per line of stdin (its arguments, space separated); each',
        '    // answered with "<status> <cycles since reset>"; the model stays live in between',
        '    static char line[1 << 16];',
        '    while (fgets(line, sizeof line, stdin)) {',
        '      std::vector<char*> av;',
        '      for (char* t = strtok(line, " \\n"); t; t = strtok(0, " \\n")) av.push_back(t);',
        '      if (av.empty()) continue;',
        '      if (strcmp(av[0], "quit") == 0) break;',
        '      av.push_back(0);',
        '      int rc = run_once(top, av.data(), cyc);',
        '      printf("%d %llu\\n", rc, cyc); fflush(stdout);',
        '    }',
        '  } else {',
        '    int rc = run_once(top, argv + 1, cyc);',
        '    if (rc) return rc;',
        '    printf("%llu\\n", cyc);',
        '  }',
        '  top->final(); delete top; return 0; }',
    ]
    return "\n".join(lines) + "\n"


# ---- AXI4-Lite bus master -------------------------------------------------------------------
# ops file: records of u64 at, u32 kind (0 read, 1 write), u32 addr, u32 data; an op is due once
# ``at`` records of input stream 0 have been presented. Before the first op of each ``at`` the
# inputs pause for ``settle`` cycles (the pipeline drains), then the ops run one at a time with
# full handshakes; each completed op writes u32 addr, u32 data (read data or written), u32 kind,
# u32 resp to the bus results file.
_BUS_REC = 20


def _bus_decl(h: Harness) -> list[str]:
    return [
        '  std::vector<uint8_t> bops = slurp(argv[a++]);',
        '  FILE* busf = fopen(argv[a++], "wb");',
        '  unsigned long long settle = strtoull(argv[a++], 0, 10);',
        f'  size_t nops = bops.size() / {_BUS_REC}, opi = 0;',
        '  unsigned long long settled_at = ~0ull, settle_left = 0;',
        '  bool op_live = false, aw_done = false, w_done = false, ar_done = false;',
    ]


def _bus_drive(h: Harness) -> list[str]:
    ax = h.axil
    c = lambda n: f"top->{_cname(ax + '__' + n)}"  # noqa: E731
    rec0 = 4 + h.inputs[0].nbytes
    return [
        f'    unsigned long long consumed0 = pos0 / {rec0};',
        '    uint64_t op_at = 0; uint32_t op_kind = 0, op_addr = 0, op_data = 0;',
        f'    if (opi < nops) {{ memcpy(&op_at, &bops[opi * {_BUS_REC}], 8); '
        f'memcpy(&op_kind, &bops[opi * {_BUS_REC} + 8], 4); '
        f'memcpy(&op_addr, &bops[opi * {_BUS_REC} + 12], 4); '
        f'memcpy(&op_data, &bops[opi * {_BUS_REC} + 16], 4); }}',
        '    bool bus_pending = opi < nops;',
        # an op due after the last record of stream 0 also waits for the other streams
        '    bool inputs_done = ' + ' && '.join(
            f'(!have{k} && pos{k} + {4 + p.nbytes} > in{k}.size())'
            for k, p in enumerate(h.inputs)) + ';',
        f'    bool at_end = op_at >= in0.size() / {rec0};',
        '    bool bus_block = bus_pending && op_at <= consumed0 && !have0 '
        '&& (!at_end || inputs_done);',
        '    bool bus_go = false;',
        '    if (bus_block) {',
        '      if (settled_at != op_at) { settled_at = op_at; settle_left = settle; }',
        '      if (settle_left > 0) settle_left--; else bus_go = true;',
        '      if (bus_go && !op_live) { op_live = true; aw_done = w_done = ar_done = false; }',
        '    }',
        f'    {c("awvalid")} = op_live && op_kind == 1 && !aw_done;',
        f'    {c("wvalid")} = op_live && op_kind == 1 && !w_done;',
        f'    {c("awaddr")} = op_addr; {c("wdata")} = op_data; {c("wstrb")} = 0xF;',
        f'    {c("awprot")} = 0; {c("arprot")} = 0;',
        f'    {c("bready")} = 1; {c("rready")} = 1;',
        f'    {c("arvalid")} = op_live && op_kind == 0 && !ar_done;',
        f'    {c("araddr")} = op_addr;',
    ]


def _bus_sample(h: Harness) -> list[str]:
    ax = h.axil
    c = lambda n: f"top->{_cname(ax + '__' + n)}"  # noqa: E731
    return [
        '    if (op_live) {',
        f'      if ({c("awvalid")} && {c("awready")}) aw_done = true;',
        f'      if ({c("wvalid")} && {c("wready")}) w_done = true;',
        f'      if ({c("arvalid")} && {c("arready")}) ar_done = true;',
        '      bool done = false; uint32_t res[4] = {op_addr, op_data, op_kind, 0};',
        f'      if (op_kind == 1 && {c("bvalid")}) {{ res[3] = {c("bresp")}; done = true; }}',
        f'      if (op_kind == 0 && {c("rvalid")}) {{ res[1] = {c("rdata")}; '
        f'res[3] = {c("rresp")}; done = true; }}',
        '      if (done) { fwrite(res, 4, 4, busf); op_live = false; opi++; }',
        '    }',
    ]


# ---- AXI4 memory slaves --------------------------------------------------------------------
# Per port a static AxiMem (it outlives a run, as the memory of a board does). Each cycle, with
# the clock low: the model drives ready/valid and the R/B payloads (_axi_drive), the design is
# evaluated, then the handshakes it saw are applied (_axi_sample); the clock edge follows. A
# harness run takes, per port, latency, back-pressure threshold (out of 2**32), seed and the
# statistics file (see AxiTiming, AXI_STATS).
_AXI_CPP = r"""
struct AxiMem {
  const char* name; uint64_t size; unsigned nb, sb;  // bytes, bus bytes, strobe bytes
  uint8_t* mem = nullptr;
  unsigned long long latency = 1, now = 0; uint64_t bp = 0, rng = 1;
  struct Rd { uint64_t addr; uint32_t id, len; unsigned long long due; };
  // a write burst: data, then strobes, per beat as received
  struct Wr { uint64_t addr; uint32_t id, len, got; unsigned long long due;
              std::vector<uint8_t> buf; };
  std::deque<Rd> rq;                  // accepted reads, in order
  std::deque<Wr> wq;                  // accepted writes, in order; the first wfill complete
  size_t wfill = 0;
  std::deque<std::vector<uint8_t>> wb;  // W beats not yet matched to an AW: data, strb, last
  uint32_t rbeat = 0; bool rv = false, bv = false, moved = false;
  std::vector<uint8_t> rbuf;          // the R beat presented (held until taken)
  uint64_t st[9];
  AxiMem(const char* n, uint64_t s, unsigned b)
      : name(n), size(s), nb(b), sb((b + 7) / 8), rbuf(b) {}
  void start(char** argv, int& a) {
    latency = strtoull(argv[a++], 0, 10); bp = strtoull(argv[a++], 0, 10);
    rng = strtoull(argv[a++], 0, 10) * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    if (!rng) rng = 1;
    memset(st, 0, sizeof st);
    if (!mem && !(mem = (uint8_t*)calloc(size, 1))) fail("cannot allocate %llu bytes",
                                                        (unsigned long long)size);
  }
  __attribute__((noreturn, format(printf, 2, 3))) void fail(const char* fmt, ...) {
    va_list ap; va_start(ap, fmt);
    fprintf(stderr, "AXI memory port '%s': ", name); vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (cycle %llu)\n", now); va_end(ap); fflush(stderr); exit(4);
  }
  bool hold() {  // true on a fraction bp / 2**32 of draws (xorshift64)
    if (!bp) return false;
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (rng >> 32) < bp;
  }
  void check(const char* kind, uint64_t addr, uint32_t len, unsigned size_, unsigned burst) {
    unsigned long long bytes = (unsigned long long)(len + 1) * nb;
    if (burst != 1) fail("%s burst at 0x%llx: AxBURST=%u, only INCR (1) is served", kind,
                         (unsigned long long)addr, burst);
    if ((1u << size_) != nb) fail("%s burst at 0x%llx: AxSIZE=%u, only whole %u-byte bus "
                                  "words are served", kind, (unsigned long long)addr, size_, nb);
    if (addr % nb) fail("%s burst at 0x%llx: not aligned to the %u-byte bus word", kind,
                        (unsigned long long)addr, nb);
    if (addr >= size || bytes > size - addr)
      fail("%s burst at 0x%llx of %u beats (%llu bytes) is out of range: the memory has "
           "%llu bytes", kind, (unsigned long long)addr, len + 1, bytes,
           (unsigned long long)size);
    if ((addr >> 12) != ((addr + bytes - 1) >> 12))
      fail("%s burst at 0x%llx of %u beats crosses a 4 KiB boundary", kind,
           (unsigned long long)addr, len + 1);
  }
  void ar(uint64_t addr, uint32_t id, uint32_t len, unsigned size_, unsigned burst) {
    check("read", addr, len, size_, burst);
    rq.push_back({addr, id, len, now + latency});
    st[0]++; if (rq.size() > st[8]) st[8] = rq.size(); moved = true;
  }
  void aw(uint64_t addr, uint32_t id, uint32_t len, unsigned size_, unsigned burst) {
    check("write", addr, len, size_, burst);
    wq.push_back({addr, id, len, 0, 0, {}}); wq.back().buf.reserve((size_t)(len + 1) * (nb + sb));
    st[1]++; moved = true;
  }
  uint8_t* w_slot() {  // room for a W beat the master hands over this cycle
    wb.emplace_back(nb + sb + 1); st[3]++; moved = true; return wb.back().data();
  }
  // drive: a new R beat / B when due and not withheld; true if the R beat is new
  bool r_next() {
    if (rv || rq.empty() || rq.front().due > now || hold()) return false;
    memcpy(rbuf.data(), mem + rq.front().addr + (uint64_t)rbeat * nb, nb);
    return rv = true;
  }
  bool b_next() {
    if (bv || wfill == 0 || wq.front().due > now || hold()) return false;
    return bv = true;
  }
  void r_taken() {
    rv = false; st[2]++; moved = true;
    if (rbeat++ == rq.front().len) { rq.pop_front(); rbeat = 0; }
  }
  void b_taken() {  // the write reaches the memory (strobed bytes only)
    Wr& w = wq.front(); const uint8_t* p = w.buf.data();
    for (uint32_t k = 0; k <= w.len; k++, p += nb + sb) {
      uint8_t* m = mem + w.addr + (uint64_t)k * nb;
      for (unsigned j = 0; j < nb; j++) if (p[nb + j / 8] >> (j % 8) & 1) m[j] = p[j];
    }
    wq.pop_front(); wfill--; bv = false; moved = true;
  }
  void match() {  // hand buffered W beats to the accepted write bursts, in order
    while (wfill < wq.size() && !wb.empty()) {
      Wr& w = wq[wfill]; std::vector<uint8_t>& b = wb.front();
      bool last = w.got == w.len;
      if (b[nb + sb] != last)
        fail("W beat %u of the %u-beat write burst at 0x%llx has WLAST=%u", w.got + 1,
             w.len + 1, (unsigned long long)w.addr, (unsigned)b[nb + sb]);
      w.buf.insert(w.buf.end(), b.begin(), b.begin() + nb + sb); wb.pop_front();
      if (w.got++ == w.len) { w.due = now + latency; wfill++; }
    }
  }
  bool busy() const { return !rq.empty() || !wq.empty() || !wb.empty(); }
  // waiting out a latency is progress (the stall detector must not fire on it)
  bool waiting() const {
    return (!rq.empty() && rq.front().due > now) || (wfill > 0 && wq.front().due > now);
  }
};
"""


def _axi_globals(h: Harness) -> list[str]:
    if not h.axi:
        return []
    return [_AXI_CPP] + [f'static AxiMem axi{k}("{p.prefix}", {p.size_bytes}ull, '
                         f'{p.data_width // 8});' for k, p in enumerate(h.axi)]


def _axi_decl(h: Harness) -> list[str]:
    lines = []
    for k, p in enumerate(h.axi):
        c = lambda n: f"top->{_cname(p.prefix + '__' + n)}"  # noqa: E731
        lines += [f'  axi{k}.start(argv, a); const char* axi{k}_stats = argv[a++];',
                  f'  {c("r__resp")} = 0; {c("b__resp")} = 0;']
    return lines


def _axi_drive(h: Harness) -> list[str]:
    lines = []
    for k, p in enumerate(h.axi):
        c = lambda n: f"top->{_cname(p.prefix + '__' + n)}"  # noqa: E731
        m = f"axi{k}"
        lines += [
            f'    {m}.now = cyc; {m}.moved = false;',
            f'    {c("ar__ready")} = !{m}.hold();',
            f'    {c("aw__ready")} = !{m}.hold();',
            # W beats ahead of their AW: at most one longest burst's worth is buffered
            f'    {c("w__ready")} = {m}.wb.size() < 256 && !{m}.hold();',
            f'    if ({m}.r_next()) {{ '
            f'{_set(p.prefix + "__r__data", p.data_width, f"{m}.rbuf.data()")}',
            f'      {c("r__id")} = {m}.rq.front().id; '
            f'{c("r__last")} = {m}.rbeat == {m}.rq.front().len; }}',
            f'    {c("r__valid")} = {m}.rv;',
            f'    if ({m}.b_next()) {c("b__id")} = {m}.wq.front().id;',
            f'    {c("b__valid")} = {m}.bv;',
        ]
    return lines


def _axi_sample(h: Harness) -> list[str]:
    lines = []
    for k, p in enumerate(h.axi):
        c = lambda n: f"top->{_cname(p.prefix + '__' + n)}"  # noqa: E731
        m = f"axi{k}"
        nb = p.data_width // 8
        for ch in ("ar", "aw"):
            lines += [
                f'    if ({c(ch + "__valid")}) {{ if ({c(ch + "__ready")}) {m}.{ch}('
                f'{c(ch + "__addr")}, {c(ch + "__id")}, {c(ch + "__len")}, {c(ch + "__size")}, '
                f'{c(ch + "__burst")}); else {m}.st[{4 if ch == "ar" else 5}]++; busy = true; }}',
            ]
        lines += [
            f'    if ({c("w__valid")}) {{ busy = true; if ({c("w__ready")}) {{ '
            f'uint8_t* wp = {m}.w_slot();',
            f'      {_get(p.prefix + "__w__data", p.data_width, "wp")}',
            f'      {_get(p.prefix + "__w__strb", nb, f"wp + {nb}")}',
            f'      wp[{nb + (nb + 7) // 8}] = {c("w__last")}; }} else {m}.st[6]++; }}',
            f'    if ({m}.rv) {{ if ({c("r__ready")}) {m}.r_taken(); else {m}.st[7]++; }}',
            f'    if ({m}.bv && {c("b__ready")}) {m}.b_taken();',
            f'    {m}.match();',
            f'    if ({m}.busy()) busy = true;',
            f'    if ({m}.moved || {m}.waiting()) moved = true;',
        ]
    return lines


def _axi_end(h: Harness) -> list[str]:
    return [f'  {{ FILE* f = fopen(axi{k}_stats, "wb"); fwrite(axi{k}.st, 8, '
            f'{len(AXI_STATS)}, f); fclose(f); }}' for k in range(len(h.axi))]


#: What generated Verilog depends on: the gateware, the shared facts it reads (register map,
#: counter names, capacities) and the config defaults that set register reset values.
MODEL_SOURCES = ("hw", "spec", "host/config.py")


def source_key(*extra, sources: tuple[str, ...] = MODEL_SOURCES) -> str:
    """A hash of the gateware sources (``sources``: files or folders under the repo root) and
    ``extra``: names a build before its Verilog is generated, so a cached build skips the
    (slow) conversion."""
    hsh = hashlib.sha256(repr(extra).encode())
    files = []
    for src in sources:
        p = ROOT / src
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    # board projects (wrapper, Tcl) are not part of the Verilated model
    files = [f for f in files if not f.is_relative_to(ROOT / "hw" / "board")]
    for f in files:
        hsh.update(f.read_bytes())
    hsh.update((Path(__file__)).read_bytes())
    return hsh.hexdigest()[:16]


#: gcc profile-guided optimisation (see :func:`build`'s ``train``): the counters' build, and
#: the build that uses them. ``-fprofile-partial-training`` keeps code the training did not
#: run optimised as usual (not for size): a run may take paths the training did not.
PGO_GEN_FLAGS = ("-CFLAGS", "-fprofile-generate", "-LDFLAGS", "-fprofile-generate")
PGO_USE_FLAGS = ("-CFLAGS", "-fprofile-use", "-CFLAGS", "-fprofile-partial-training",
                 "-CFLAGS", "-fprofile-correction", "-CFLAGS", "-Wno-missing-profile")


def pgo_enabled() -> bool:
    """Profile-guided builds are on unless ``TICKWIRE_SIM_PGO=0`` (they cost two more
    compilations and a training run per design version)."""
    return os.environ.get("TICKWIRE_SIM_PGO", "1") != "0"


def build(h: Harness, train=None) -> Path:
    """Verilate and compile the harness (cached by a hash of the Verilog and the harness, or
    by ``h.key`` when given); returns the executable. Parallel test workers wait for one
    another's build.

    ``train``: a function ``train(exe)`` that runs an executable of this harness on
    representative input (e.g. :func:`run` with ``exe=``). The build is then profile-guided:
    compiled with gcc's counters, trained, and compiled again with the profile (about 10-15 %
    fewer CPU seconds per cycle on the appliance, see the README's "RTL simulation speed");
    cached beside the plain build. Without ``train``, or with PGO off (:func:`pgo_enabled`),
    the plain build."""
    from .runner import _locked
    BUILD.mkdir(parents=True, exist_ok=True)
    with _locked(BUILD / f".{h.name}.lock"):
        exe = _build(h, train if pgo_enabled() else None)
        os.utime(exe)  # the cache's "last used", for the eviction below
        _evict(h.name)
        return exe


#: builds of one design kept in the cache (the most recently used); a gateware change makes a
#: new build, and each holds about 20 MB once slimmed
CACHE_KEEP = int(os.environ.get("TICKWIRE_SIM_CACHE_KEEP", "8"))
#: a build used this recently is never evicted: another test worker may be running it
CACHE_IN_USE_S = 3600


def _evict(name: str) -> None:
    """Remove the least recently used builds of ``name`` beyond :data:`CACHE_KEEP`."""
    import time
    builds = []
    for d in BUILD.glob(f"{name}-*"):
        exe = d / "obj_dir" / f"V{name}"
        if ".tmp" not in d.name and exe.exists():
            builds.append((exe.stat().st_mtime, d))
    builds.sort(reverse=True)
    now = time.time()
    for used, d in builds[CACHE_KEEP:]:
        if now - used > CACHE_IN_USE_S:
            shutil.rmtree(d, ignore_errors=True)


def _slim(obj_dir: Path) -> None:
    """Drop what only the compilation needed (precompiled headers, objects: about 150 MB of
    a build's 165 MB); the executable and the generated sources stay."""
    for pattern in ("*.gch", "*.o", "*.a", "*.d"):
        for f in obj_dir.glob(pattern):
            f.unlink()


def _build(h: Harness, train=None) -> Path:
    cpp = _harness_cpp(h)  # depends on the ports only, not on the Verilog
    tag = "-pgo" if train else ""
    if h.key:
        key = h.key + hashlib.sha256((cpp + _cpu_id()).encode()).hexdigest()[:8]
        exe = BUILD / f"{h.name}-{key}{tag}" / "obj_dir" / f"V{h.name}"
        if exe.exists():
            return exe
        if callable(h.verilog):
            h.verilog = h.verilog()
    else:
        key = hashlib.sha256((h.verilog + cpp + _cpu_id()).encode()).hexdigest()[:16]
    d = BUILD / f"{h.name}-{key}{tag}"
    exe = d / "obj_dir" / f"V{h.name}"
    if exe.exists():
        return exe
    tmp = d.with_name(d.name + f".tmp{os.getpid()}")
    gen_dir = tmp.with_name(tmp.name + "-gen")
    for p in (tmp, gen_dir):
        shutil.rmtree(p, ignore_errors=True)
    try:
        if train:
            # the counters are written beside the objects (an absolute path): train there,
            # then hand them to the second build, whose objects have the same names
            gen = _compile(h, cpp, gen_dir, PGO_GEN_FLAGS)
            train(gen)
            gcda = list(gen.parent.glob("*.gcda"))
            if not gcda:
                raise RuntimeError(f"{h.name}: the PGO training run left no profile")
            (tmp / "obj_dir").mkdir(parents=True)
            for f in gcda:
                shutil.copy(f, tmp / "obj_dir" / f.name)
            _compile(h, cpp, tmp, PGO_USE_FLAGS)
            for f in gcda:
                (tmp / "obj_dir" / f.name).unlink()
        else:
            _compile(h, cpp, tmp, ())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(gen_dir, ignore_errors=True)
    _slim(tmp / "obj_dir")
    try:
        tmp.rename(d)  # atomic: a parallel worker that built the same design first wins
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return exe


def _compile(h: Harness, cpp: str, where: Path, flags) -> Path:
    """Verilate and compile the harness in the new folder ``where``; returns the executable."""
    where.mkdir(parents=True, exist_ok=True)
    (where / f"{h.name}.v").write_text(h.verilog)
    (where / f"{_TOP}.v").write_text(_wrapper(h, h.verilog))
    (where / "harness.cpp").write_text(cpp)
    from .runner import verilator_env
    env = dict(os.environ, **verilator_env())
    jobs = str(max(1, min(4, os.cpu_count() or 1)))
    cmd = ["verilator", "--cc", "--exe", "--build", "-O3", "--x-assign", "fast",
           "--x-initial", "fast", "--noassert", "-Wno-fatal", "-Wno-lint", "-Wno-style",
           # the wrapper is the top; the model class keeps the design's name
           "--top-module", _TOP, "--prefix", f"V{h.name}", "-j", jobs, *BUILD_FLAGS, *flags,
           # the wheel's verilated.mk leaves the PCH include flag empty (see sim/runner.py)
           "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include",
           f"{h.name}.v", f"{_TOP}.v", "harness.cpp"]
    r = subprocess.run(cmd, cwd=where, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"verilator failed for {h.name}:\n{r.stdout[-2000:]}\n"
                           f"{r.stderr[-2000:]}")
    return where / "obj_dir" / f"V{h.name}"


def pack_records(payloads: list[bytes] | np.ndarray, nbytes: int, gaps=None) -> bytes:
    """Input file: per record a u32 gap (idle cycles before it) and ``nbytes`` payload bytes."""
    if isinstance(payloads, np.ndarray):
        n = payloads.shape[0]
        rec = np.zeros((n, 4 + nbytes), np.uint8)
        rec[:, 4:4 + payloads.shape[1]] = payloads
        if gaps is not None:
            rec[:, :4] = np.asarray(gaps, "<u4").view(np.uint8).reshape(n, 4)
        return rec.tobytes()
    out = bytearray()
    for i, p in enumerate(payloads):
        out += struct.pack("<I", 0 if gaps is None else int(gaps[i]))
        out += bytes(p).ljust(nbytes, b"\0")[:nbytes]
    return bytes(out)


def _prepare(h: Harness, d: Path, inputs: list[bytes], statics, pulses, max_cycles: int,
             idle_cycles: int, random_ready: bool, bus_ops, settle: int,
             axi_timing=None) -> list[str]:
    """Write a run's input files into ``d``; returns the harness arguments of the run."""
    st = bytearray()
    for port, width in h.statics.items():
        st += int((statics or {}).get(port, 0)).to_bytes((width + 7) // 8, "little")
    (d / "statics.bin").write_bytes(bytes(st))
    args = [str(d / "statics.bin")]
    for k, data in enumerate(inputs):
        (d / f"in{k}.bin").write_bytes(data)
        args.append(str(d / f"in{k}.bin"))
    for k in range(len(h.outputs)):
        args.append(str(d / f"out{k}.bin"))
    for k in range(len(h.inputs)):
        args.append(str(d / f"ack{k}.bin"))
    args += [str(max_cycles), str(idle_cycles), "1" if random_ready else "0"]
    pb = _pulse_bytes(h)
    blob = b"".join(pack_bits([(rec.get(port, 0), w) for port, w in h.pulses])
                    .to_bytes(pb, "little") for rec in pulses) if pb else b""
    (d / "pulses.bin").write_bytes(blob)
    args.append(str(d / "pulses.bin"))
    if h.axil:
        n0 = len(inputs[0]) // (4 + h.inputs[0].nbytes)
        blob, last = bytearray(), 0
        for at, kind, addr, value in bus_ops:
            at = min(int(at), n0)
            if at < last:
                raise ValueError(f"bus op at {at} after one at {last}: ops go in order")
            last = at
            blob += struct.pack("<QIII", at, 1 if kind == "w" else 0, addr, value)
        (d / "bus_ops.bin").write_bytes(bytes(blob))
        args += [str(d / "bus_ops.bin"), str(d / "bus.bin"), str(int(settle))]
    for k, p in enumerate(h.axi):
        args += _axi_timing(h, axi_timing, p.prefix).args() + [str(d / f"axi{k}.bin")]
    if h.observe:
        args.append(str(d / "observe.bin"))
    return args


def _axi_timing(h: Harness, timing, prefix: str) -> AxiTiming:
    """A port's :class:`AxiTiming` from ``run``'s ``axi_timing``: one for every port, a dict by
    prefix, or None (the defaults)."""
    if timing is None or isinstance(timing, AxiTiming):
        return timing or AxiTiming()
    unknown = set(timing) - {p.prefix for p in h.axi}
    if unknown:
        raise ValueError(f"{h.name}: axi_timing for unknown AXI ports {sorted(unknown)}")
    return timing.get(prefix, AxiTiming())


def taken_cycles(d: Path, k: int) -> np.ndarray:
    """Cycle at which each record of input stream ``k`` was taken, in the run whose files
    are in ``d``."""
    return np.frombuffer((d / f"ack{k}.bin").read_bytes(), "<u8").copy()


def _collect(h: Harness, d: Path, n_ops: int) -> list:
    """A run's outputs (see :func:`run`) from the files in ``d``."""
    outs = []
    if h.observe:
        vals = np.frombuffer((d / "observe.bin").read_bytes(), "<u8")
        outs.append(dict(zip(h.observe, (int(v) for v in vals))))
    for k, p in enumerate(h.outputs):
        raw = (d / f"out{k}.bin").read_bytes()
        dt = np.dtype([("cycle", "<u8"), ("payload", np.uint8, (p.nbytes,))])
        outs.append(np.frombuffer(raw, dt).copy())
    if h.axil:
        res = np.frombuffer((d / "bus.bin").read_bytes(), "<u4").reshape(-1, 4)
        outs.append([("w" if k else "r", int(a), int(v), int(rsp))
                     for a, v, k, rsp in res.tolist()])
        if len(res) != n_ops:
            raise RuntimeError(f"{h.name}: {len(res)} of {n_ops} bus operations completed")
    if h.axi:
        outs.append({p.prefix: dict(zip(AXI_STATS, (int(v) for v in np.frombuffer(
            (d / f"axi{k}.bin").read_bytes(), "<u8")))) for k, p in enumerate(h.axi)})
    return outs


def run(h: Harness, inputs: list[bytes], statics: dict[str, int] | None = None, *,
        pulses: list[dict[str, int]] = (), max_cycles: int = 1 << 40, idle_cycles: int = 64,
        random_ready: bool = False, workdir: Path | None = None,
        bus_ops: list[tuple[int, str, int, int]] = (), settle: int = 4096,
        taken: list | None = None,
        axi_timing: AxiTiming | dict[str, AxiTiming] | None = None,
        exe: Path | None = None) -> tuple[list[np.ndarray], int]:
    """Run the harness; returns (outputs, cycles simulated): ``outputs`` starts with a dict of
    the ``observe`` ports' final values when there are any, then per output stream a
    structured array (cycle, payload bytes), then (harnesses with ``axil``) the completed bus
    operations as a list of (kind "r"/"w", addr, data, resp), then (harnesses with ``axi``)
    the run's statistics per AXI memory: ``{prefix: {name: value}}``, names :data:`AXI_STATS`.

    ``bus_ops`` (harnesses with ``axil``): (at, "r"|"w", addr, data) in order; an op runs once
    ``at`` records of input stream 0 have been presented (``at`` past the end: after the
    last), the inputs pausing ``settle`` cycles before the first op of each ``at``.
    ``taken``: a list that receives, per input stream, the cycle each record was taken.
    ``axi_timing``: latency and back-pressure of the AXI memories (:class:`AxiTiming`, one
    for all or a dict by prefix; default ``AxiTiming()``). ``exe``: the harness executable to
    run (default :func:`build`'s plain build)."""
    exe = exe or build(h)
    import tempfile
    with tempfile.TemporaryDirectory(dir=workdir) as d:
        d = Path(d)
        args = _prepare(h, d, inputs, statics, pulses, max_cycles, idle_cycles, random_ready,
                        bus_ops, settle, axi_timing)
        r = subprocess.run([str(exe)] + args, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{h.name} harness failed: {r.stderr[-1000:]}")
        if taken is not None:
            taken += [taken_cycles(d, k) for k in range(len(h.inputs))]
        return _collect(h, d, len(bus_ops)), int(r.stdout.strip() or 0)


class Server:
    """The harness as a live process (``--serve``): the model keeps its state between runs,
    so a host can feed some input, read and write registers, feed more, as on a board.

    :meth:`run` takes :func:`run`'s arguments and returns its outputs; cycle stamps count
    from the reset at start-up, and the second value is the total cycles simulated."""

    def __init__(self, h: Harness, workdir: Path | None = None):
        import tempfile
        self.h = h
        exe = build(h)
        self._tmp = tempfile.TemporaryDirectory(dir=workdir)
        self.dir = Path(self._tmp.name)
        self.cycles = 0
        self.proc = subprocess.Popen([str(exe), "--serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     bufsize=1)

    def run(self, inputs: list[bytes], statics: dict[str, int] | None = None, *,
            pulses: list[dict[str, int]] = (), max_cycles: int = 1 << 40,
            idle_cycles: int = 64, random_ready: bool = False,
            bus_ops: list[tuple[int, str, int, int]] = (), settle: int = 4096,
            axi_timing: AxiTiming | dict[str, AxiTiming] | None = None) -> tuple[list, int]:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"{self.h.name} server is not running")
        args = _prepare(self.h, self.dir, inputs, statics, pulses, max_cycles, idle_cycles,
                        random_ready, bus_ops, settle, axi_timing)
        self.proc.stdin.write(" ".join(args) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "0":
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            got = " ".join(line) or "no answer"
            raise RuntimeError(f"{self.h.name} server run failed ({got}): {err[-1000:]}")
        self.cycles = int(line[1])
        return _collect(self.h, self.dir, len(bus_ops)), self.cycles

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    self.proc.stdin.write("quit\n")
                    self.proc.stdin.flush()
                    self.proc.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    self.proc.kill()
            for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                f.close()
            self.proc = None
        self._tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def pack_bits(fields: list[tuple[int, int]]) -> int:
    """Pack (value, width) pairs LSB first into an integer (Amaranth struct order)."""
    v, sh = 0, 0
    for val, w in fields:
        v |= (int(val) & ((1 << w) - 1)) << sh
        sh += w
    return v


def payload_int(rec: np.ndarray) -> int:
    return int.from_bytes(bytes(rec), "little")


