"""``tickwire hw report --top appliance --target T``: the whole appliance through Yosys
``synth_xilinx`` (UltraScale+, flattened, the LUT-level flow of :mod:`tickwire.hw.report`),
its totals against the target part's resources.

The book builder and the register file are synthesized apart, in parallel with the rest, and
their netlists put back in place of their instances (:data:`APART`); the totals, the deepest
LUT path of the whole design (followed across those blocks' ports) and per block
(:func:`tickwire.hw.report.block_breakdown`: registers and memories by the instance they sit
in, LUTs by the registers they feed) its share and its deepest path, so that the blocks'
figures are the ones of the design as built, cross-block paths included. A run that does not
finish within ``timeout`` seconds is reported as such, with the last synthesis step it reached.

The order table off chip (the default capacities) is the appliance's ``mem`` AXI4 master:
reported with the memories (``offchip``: its widths and the bytes the table needs) and held
against the target's off-chip memory (``Target.offchip_bytes``; on an HBM card also one bank,
``offchip_bank_bytes``, where the table's buffer lives) in the share and the fit.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from .identity import build_id, source_digest
from .targets import target
from .wrapper import order_memory

__all__ = ["appliance_report", "appliance_markdown", "APART", "fit", "offchip_use"]

#: blocks synthesized by Yosys runs of their own, side by side with the rest (see
#: :func:`tickwire.hw.report.synthesize`): the book builder is two thirds of the design and
#: the register file the next largest, so on two cores the whole runs in about the book
#: builder's time
APART = ("book_builder", "regmap")


def offchip_use(t, offchip: dict | None) -> dict | None:
    """What a design's off-chip masters (:func:`tickwire.hw.report.offchip_ports`) need of
    target ``t``'s off-chip memory; None without such masters."""
    if not offchip:
        return None
    return {"ports": offchip, "bytes": sum(m["bytes"] or 0 for m in offchip.values()),
            "memory": t.offchip_kind, "memory_bytes": t.offchip_bytes,
            "bank_bytes": t.offchip_bank_bytes or None}


def fit(t, rep, offchip: dict | None) -> tuple[dict, bool]:
    """(share of each of ``t``'s resources the synthesized design ``rep`` uses, whether it
    fits): the part's LUTs (also with the LUTRAM, which sits in SLICEM LUTs), FFs, block
    and ultra RAM, DSPs; with an off-chip table (``offchip``, :func:`offchip_use`) the
    board's off-chip memory and, on HBM, the one bank its buffer is in. A target without
    off-chip memory has no share of it to give (None) and fits no such design."""
    have = {"luts": t.luts, "ffs": t.ffs, "bram36": t.bram36, "uram": t.uram, "dsp": t.dsp}
    use = {"luts": rep.luts, "ffs": rep.ffs, "bram36": rep.bram36, "uram": rep.uram,
           "dsp": rep.dsp}
    if offchip:
        have["offchip"], use["offchip"] = t.offchip_bytes, offchip["bytes"]
        if t.offchip_bank_bytes:
            have["offchip_bank"], use["offchip_bank"] = t.offchip_bank_bytes, offchip["bytes"]
    share = {k: round(use[k] / have[k], 4) if have[k] else None for k in have}
    share["luts_with_lutram"] = round((rep.luts + rep.lutram) / t.luts, 4)
    return share, all(v is not None and v <= 1 for v in share.values())


def appliance_report(name: str, *, timeout: float | None = 600.0, symbols: int | None = None,
                     keep: Path | None = None) -> dict:
    """``keep``: a folder to synthesize in and leave behind (Verilog, Yosys logs, netlists)."""
    from ..appliance import Appliance
    from ..report import synthesize
    t = target(name)
    params = t.params({"symbols": symbols} if symbols else None)
    cap = {k: params[k] for k in ("symbols", "levels", "order_buckets", "order_ways", "groups",
                                  "hist_bins")}
    # the table's place named as the board build names it (hw/board/wrapper.py)
    app = Appliance(depth=t.depth, build_id=build_id(params, source_digest(board=True)),
                    order_memory=order_memory(cap), **cap)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tw-appliance-") as d:
        if keep is not None:
            Path(keep).mkdir(parents=True, exist_ok=True)
        rep = synthesize("tickwire_appliance", app, Path(keep or d), timeout=timeout,
                         breakdown=True, apart=APART)
    secs = round(time.perf_counter() - t0, 1)
    out = {"top": "appliance", "target": t.name, "part": t.part, "capacity": cap,
           "depth": t.depth, "seconds": secs, "timeout": timeout, "report": asdict(rep)}
    # the report's own offchip, else the component's (a failed run still says what it needs)
    from ..report import offchip_ports
    offchip = rep.offchip or offchip_ports(app)
    out["offchip"] = offchip_use(t, offchip)
    if rep.error is None and t.luts:
        out["share"], out["fits"] = fit(t, rep, out["offchip"])
    return out


def appliance_markdown(r: dict) -> str:
    """The report of :func:`appliance_report` for reading: totals, share of the part, blocks."""
    rep = r["report"]
    head = (f"appliance on {r['target']} ({r['part']}), capacities {r['capacity']}, "
            f"synthesized in {r['seconds']:g} s")
    if rep["error"]:
        return f"{head}\nerror: {rep['error']}"
    lines = [head, "",
             f"totals: {rep['luts']:,} LUTs, {rep['ffs']:,} FFs, {rep['bram36']:g} BRAM36, "
             f"{rep['uram']} URAM, {rep['lutram']:,} LUTRAM, {rep['dsp']} DSP; deepest path {rep['lut_levels']} "
             f"LUT levels"]
    off = r.get("offchip")
    if off:
        from ..report import mib, offchip_text
        lines.append(f"off chip: {offchip_text(off['ports'])}; the target's "
                     f"{off['memory'] or 'off-chip memory'}: {mib(off['memory_bytes'])}"
                     + (f" ({mib(off['bank_bytes'])} a bank)" if off["bank_bytes"] else ""))
    if "share" in r:
        sh = r["share"]
        mem = ""
        if "offchip" in sh:
            mem = (", no off-chip memory for the order table" if sh["offchip"] is None else
                   f", off-chip memory {sh['offchip']:.2%}" + (
                       f" (of one bank {sh['offchip_bank']:.0%})" if "offchip_bank" in sh
                       else ""))
        lines.append(f"share of the part: LUTs {sh['luts']:.0%} (with LUTRAM "
                     f"{sh['luts_with_lutram']:.0%}), FFs {sh['ffs']:.0%}, BRAM36 "
                     f"{sh['bram36']:.0%}, URAM {sh['uram']:.0%}, DSP {sh['dsp']:.0%}{mem}: "
                     f"{'fits' if r['fits'] else 'does NOT fit'}")
    if rep.get("blocks"):
        lines += ["", "| block | LUTs | FFs | BRAM36 | URAM | LUTRAM | DSP | LUT levels |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, b in sorted(rep["blocks"].items(), key=lambda kv: -kv[1]["luts"]):
            lines.append(f"| {name} | {b['luts']:,} | {b['ffs']:,} | {b['bram36']:g} | "
                         f"{b['uram']} | {b['lutram']:,} | {b['dsp']} | {b['lut_levels']} |")
    return "\n".join(lines)
