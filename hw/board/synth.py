"""``tickwire hw report --top appliance --target T``: the whole appliance through Yosys
``synth_xilinx`` (UltraScale+, flattened, the LUT-level flow of :mod:`tickwire.hw.report`),
its totals against the target part's resources.

One flattened run gives the totals and the deepest LUT path of the whole design; per-block
figures come from ``tickwire hw report`` (each block alone). A run that does not finish within
``timeout`` seconds is reported as such, with the last synthesis step it reached.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from .identity import build_id, source_digest
from .targets import target

__all__ = ["appliance_report"]


def appliance_report(name: str, *, timeout: float | None = 600.0, symbols: int | None = None
                     ) -> dict:
    from ..appliance import Appliance
    from ..report import synthesize
    t = target(name)
    params = t.params({"symbols": symbols} if symbols else None)
    cap = {k: params[k] for k in ("symbols", "levels", "order_buckets", "order_ways", "groups",
                                  "hist_bins")}
    app = Appliance(depth=t.depth, build_id=build_id(params, source_digest(board=True)), **cap)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tw-appliance-") as d:
        rep = synthesize("tickwire_appliance", app, Path(d), timeout=timeout)
    secs = round(time.perf_counter() - t0, 1)
    out = {"top": "appliance", "target": t.name, "part": t.part, "capacity": cap,
           "depth": t.depth, "seconds": secs, "timeout": timeout, "report": asdict(rep)}
    if rep.error is None and t.luts:
        have = {"luts": t.luts, "ffs": t.ffs, "bram36": t.bram36, "dsp": t.dsp}
        use = {"luts": rep.luts, "ffs": rep.ffs, "bram36": rep.bram36, "dsp": rep.dsp}
        out["share"] = {k: round(use[k] / have[k], 4) for k in have}
        # LUTRAM sits in SLICEM LUTs: counted against the LUTs too
        out["share"]["luts_with_lutram"] = round((rep.luts + rep.lutram) / t.luts, 4)
        out["fits"] = all(v <= 1 for v in out["share"].values())
    return out
