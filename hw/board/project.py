"""``tickwire board build``: a complete vendor project for a target, and its manifest.

Layout of ``DIR``::

    hdl/tickwire_appliance.v   the appliance (Amaranth -> Verilog), BUILD_ID built in
    hdl/tickwire.v             the kernel top (hw/board/wrapper.py)
    tcl/package_ip.tcl         IP packaging (VLNV tickwire.dev:tickwire:tickwire:1.0)
    tcl/bd.tcl                 PYNQ: block design -> overlay/tickwire.bit + .hwh
    hdl/tickwire_book_mover.v  Alveo: the book mover (hw/board/mover.py)
    tcl/package_xo.tcl         Alveo: user-managed RTL kernels .xo (appliance, book mover) +
                               the MAC kernel .xo
    link.cfg                   Alveo: v++ --link configuration -> tickwire.xclbin (the
                               order table's master on ORDER_BANK)
    constraints/board.xdc      PYNQ: constraints (Alveo: the platform's)
    build.sh                   the vendor steps in order
    manifest.json              what this build is (ID, VERSION, MAP_HASH, BUILD_ID, ...)

Only Verilog is generated here (no synthesis); Vivado/Vitis run when ``run_tools`` and they
are on PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from tickwire.spec.capacity import ORDER_LINE_BYTES
from tickwire.spec.regmap import REGMAP

from .identity import build_id, source_digest
from .targets import Target, order_table_bytes, target
from .book_ring import MOVER_KERNEL, MOVER_MAP, MOVER_VLNV, slot_bytes
from .tcl import (ADDRESS_MAP, MAC_IP, MOVER_BANK, ORDER_BANK, ORDER_PORT, VLNV, bd_tcl,
                  link_cfg, package_ip_tcl, package_xo_tcl, ps_ddr_segments, xdc)
from .wrapper import (APPLIANCE, BOOK_BEAT, KERNEL, MEM_INTERFACE, KernelTop, appliance_mem,
                      appliance_verilog, book_beats, kernel_interfaces, kernel_verilog)

__all__ = ["build_project", "manifest", "order_table", "tools_missing", "git_commit",
           "MANIFEST"]


def order_table(t: Target, params: dict) -> dict | None:
    """The manifest's ``order_table``: where the build's off-chip order table goes and what
    reaches it (None: the table is on chip). ValueError where the board cannot hold it."""
    nbytes = order_table_bytes(params["order_buckets"])
    if not nbytes:
        return None
    mem = appliance_mem(t.depth, {k: params[k] for k in REGMAP.capacity() if k in params})
    reg = REGMAP.register("ORDER_TABLE_BASE")
    out = {"bytes": nbytes, "interface": MEM_INTERFACE, "register": reg.name,
           "offset": reg.offset, "addr_width": mem[0], "data_width": mem[1],
           "id_width": mem[2], "line_bytes": ORDER_LINE_BYTES}
    if t.flow == "rtl":
        return dict(out, memory="the harness's AXI memory model")
    if nbytes > t.offchip_bytes:
        raise ValueError(f"{t.name}: an order table of {nbytes:,} bytes does not fit its "
                         f"{t.offchip_bytes:,} bytes of {t.offchip_kind}")
    if t.flow == "pynq":
        out.update(memory=t.offchip_kind, port=ORDER_PORT[0],
                   windows=[[f"0x{b:x}", f"0x{n:x}"] for _, b, n in ps_ddr_segments(t)])
    elif t.flow == "xrt":
        if t.offchip_bank_bytes and nbytes > t.offchip_bank_bytes:
            raise ValueError(f"{t.name}: an order table of {nbytes:,} bytes is larger than "
                             f"one {t.offchip_kind} bank ({t.offchip_bank_bytes:,} bytes)")
        out.update(memory=t.offchip_kind, bank=ORDER_BANK)
    return out

MANIFEST = "manifest.json"


def git_commit(root: Path | None = None) -> tuple[str | None, bool]:
    """(commit, dirty) of the checkout holding the sources, (None, False) outside one."""
    root = root or Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=20)
        if rev.returncode:
            return None, False
        st = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                            cwd=root, capture_output=True, text=True, timeout=60)
        return rev.stdout.strip(), bool(st.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        return None, False


def manifest(t: Target, capacity: dict | None = None) -> dict:
    """The manifest of a build of ``t`` from the sources as they are now."""
    params = t.params(capacity)
    board_digest = source_digest(board=True)
    model_digest = source_digest()
    # the Verilated appliance's BUILD_ID covers the model's sources only (its cache key)
    bid = build_id(params, model_digest if t.flow == "rtl" else board_digest)
    commit, dirty = git_commit()
    cap = {k: params[k] for k in REGMAP.capacity() if k in params}
    order = order_table(t, params)
    mem = None if order is None else (order["addr_width"], order["data_width"],
                                      order["id_width"])
    m = {
        "id": f"0x{REGMAP.map_id:08x}", "version": list(REGMAP.version),
        "map_hash": f"0x{REGMAP.hash:08x}", "build_id": f"0x{bid:08x}",
        "target": t.name, "board": t.board, "flow": t.flow, "part": t.part,
        "board_part": t.board_part, "platform": t.platform, "clock_mhz": t.clock_mhz,
        "depth": t.depth, "capacity": cap, "params": params,
        "git_commit": commit, "git_dirty": dirty,
        "source_digest": board_digest if t.flow != "rtl" else model_digest,
        "kernel": KERNEL, "vlnv": VLNV,
        "interfaces": {n: {"protocol": p, "mode": md}
                       for n, (p, md, _) in kernel_interfaces(mem).items()},
        "book_beat_bits": BOOK_BEAT, "book_beats_per_row": book_beats(t.depth),
        "streams": t.feed_sources(), "memory": t.memory, "order_table": order,
        "network": ({"ip": MAC_IP, "rate": "10GBASE-R",
                     "cages": [{"name": c.name, "kind": c.kind, "gt": c.gt,
                                "gt_location": c.gt_location, "refclk_mhz": c.refclk_mhz,
                                "refclk": c.refclk, "use": [list(u) for u in c.use],
                                "verified": c.verified, "source": c.source}
                               for c in t.cages]} if t.cages else None),
        "notes": t.notes, "source": t.source,
    }
    if t.flow == "pynq":
        m["address_map"] = {c: {"segment": s, "offset": f"0x{o:08x}", "range": f"0x{r:x}"}
                            for c, (s, o, r) in ADDRESS_MAP.items()
                            if c != "feed_mac" or t.cages}
        m["artifacts"] = {"bit": "overlay/tickwire.bit", "hwh": "overlay/tickwire.hwh"}
    elif t.flow == "xrt":
        m["artifacts"] = {"xclbin": "tickwire.xclbin"}
        m["book_mover"] = {"kernel": MOVER_KERNEL, "instance": f"{MOVER_KERNEL}_1",
                           "vlnv": MOVER_VLNV, "bank": MOVER_BANK,
                           "map_hash": f"0x{MOVER_MAP.hash:08x}",
                           "slot_bytes": slot_bytes(book_beats(t.depth))}
    else:
        m["artifacts"] = {}
    return m


def _build_sh(t: Target) -> str:
    head = ["#!/bin/sh", f"# tickwire board project for {t.name}: the vendor steps in order",
            "set -eu", 'cd "$(dirname "$0")"', "mkdir -p reports xo"]
    if t.flow == "pynq":
        body = ["command -v vivado >/dev/null || { echo 'vivado not on PATH (source "
                "settings64.sh of Vivado)' >&2; exit 2; }",
                "vivado -mode batch -nojournal -nolog -source tcl/package_ip.tcl",
                "vivado -mode batch -nojournal -log reports/vivado.log -source tcl/bd.tcl",
                "echo 'overlay: overlay/tickwire.bit overlay/tickwire.hwh'"]
    else:
        body = ["for tool in vivado v++; do command -v $tool >/dev/null || { echo \"$tool not "
                "on PATH (source Vitis's settings64.sh and XRT's setup.sh)\" >&2; exit 2; }; "
                "done",
                "vivado -mode batch -nojournal -log reports/package_xo.log -source "
                "tcl/package_xo.tcl",
                "v++ --link --target hw --config link.cfg --save-temps --temp_dir _x "
                f"xo/{KERNEL}.xo xo/{MOVER_KERNEL}.xo xo/feed_mac.xo -o tickwire.xclbin",
                "echo 'kernel image: tickwire.xclbin'"]
    return "\n".join(head + body) + "\n"


def tools_missing(t: Target) -> list[str]:
    need = {"pynq": ["vivado"], "xrt": ["vivado", "v++"]}.get(t.flow, [])
    return [x for x in need if shutil.which(x) is None]


def build_project(name: str, out: Path, *, capacity: dict | None = None, verilog: bool = True,
                  run_tools: bool = True, log=print) -> dict:
    """Write the project of target ``name`` into ``out``; returns the manifest (with
    ``"tools"``: what ran or why nothing did). ``verilog=False`` skips the appliance's Verilog
    (the Tcl and the kernel top do not depend on its contents)."""
    t = target(name)
    out = Path(out)
    for d in ("hdl", "tcl"):
        (out / d).mkdir(parents=True, exist_ok=True)
    man = manifest(t, capacity)
    bid = int(man["build_id"], 16)
    cap = man["capacity"]
    t0 = time.perf_counter()
    if verilog:
        (out / "hdl" / f"{APPLIANCE}.v").write_text(appliance_verilog(t.depth, cap, bid))
    (out / "hdl" / f"{KERNEL}.v").write_text(kernel_verilog(KernelTop(t.depth, cap, bid)))
    man["verilog_seconds"] = round(time.perf_counter() - t0, 1)
    order = man["order_table"]
    if t.flow == "pynq":
        (out / "tcl" / "package_ip.tcl").write_text(package_ip_tcl(t, order))
        (out / "tcl" / "bd.tcl").write_text(bd_tcl(t, order))
        # Alveo: the platform constrains the clocks and the QSFP28 GT pins
        (out / "constraints").mkdir(exist_ok=True)
        (out / "constraints" / "board.xdc").write_text(xdc(t))
    elif t.flow == "xrt":
        from .mover import mover_verilog
        (out / "hdl" / f"{MOVER_KERNEL}.v").write_text(mover_verilog(book_beats(t.depth)))
        (out / "tcl" / "package_xo.tcl").write_text(package_xo_tcl(t, order))
        (out / "link.cfg").write_text(link_cfg(t, order))
    if t.flow != "rtl":
        sh = out / "build.sh"
        sh.write_text(_build_sh(t))
        sh.chmod(0o755)
    missing = tools_missing(t)
    if t.flow == "rtl":
        man["tools"] = "none: the rtl target is the Verilated appliance (no vendor flow)"
    elif not run_tools:
        man["tools"] = "not run (asked not to)"
    elif missing:
        man["tools"] = f"not run: {', '.join(missing)} not on PATH"
    else:
        log(f"running {out / 'build.sh'} (Vivado/Vitis)")
        r = subprocess.run([str(out / "build.sh")], cwd=out, env=dict(os.environ))
        man["tools"] = f"build.sh exit code {r.returncode}"
    (out / MANIFEST).write_text(json.dumps(man, indent=2) + "\n")
    return man
