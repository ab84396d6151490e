"""`tickwire hw report` (hw/report.py): the LUT-level count on a netlist worked out by hand, and
Yosys `synth_xilinx` on the blocks that synthesize in a minute or two, whose LUT levels and
declared latencies must be the README's resource table.

Measured synthesis times (2-core machine shared with other jobs): egress 50 s, frame_parser
58 s, trigger 73 s, mold_tracker 90 s, risk 100 s, order_path 114 s, itch_decoder 45-140 s,
regmap 105 s. Left out as slow for the suite: the book builder (4-7 minutes since the
report drops its locate map's all-zero initial block; its README row was measured by hand).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tickwire.hw import report

README = Path(__file__).resolve().parents[1] / "README.md"
SMALL_BLOCKS = ("egress", "frame_parser", "trigger", "mold_tracker", "risk", "order_path",
                "itch_decoder", "regmap", "port_walker")


def readme_table() -> dict[str, dict]:
    """{block: {"lut_levels": int, "latency": int | None}} from the README's hw-table."""
    text = README.read_text()
    table = text[text.index("<!-- hw-table -->"):text.index("<!-- /hw-table -->")]
    out = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 8 or not re.fullmatch(r"\d+", cells[6]):
            continue
        lat = re.match(r"\d+", cells[7])
        out[cells[0].split()[0]] = {"lut_levels": int(cells[6]),
                                    "latency": int(lat.group()) if lat else None}
    return out


def _cell(type_, ins: dict, outs: dict) -> dict:
    return {"type": type_, "connections": {**ins, **outs},
            "port_directions": {**dict.fromkeys(ins, "input"), **dict.fromkeys(outs, "output")}}


def test_lut_levels_of_a_hand_built_netlist():
    """FF -> LUT2 -> LUT6 -> MUXF7 -> FF is 3 levels; LUT6 -> a LUTRAM's read address (one
    level for its read) -> LUT1 -> output port is 2 + 1 + 1 = 4; the LUTRAM's data input is
    its write side, which ends a path (3 levels there), and a carry block adds no level."""
    cells = {
        "ff_a": _cell("FDRE", {"C": [1], "D": [20]}, {"Q": [3]}),
        "l2": _cell("LUT2", {"I0": [3], "I1": [2]}, {"O": [4]}),
        "l6": _cell("LUT6", {"I0": [4]}, {"O": [5]}),
        "mux": _cell("MUXF7", {"I0": [5], "I1": [4], "S": [2]}, {"O": [6]}),
        "ff_b": _cell("FDRE", {"C": [1], "D": [6]}, {"Q": [20]}),
        "ram": _cell("RAM64M", {"ADDRA": [5], "ADDRB": [2], "DIA": [6], "WE": [2], "WCLK": [1]},
                     {"DOA": [7], "DOB": [9]}),
        "l1": _cell("LUT1", {"I0": [7]}, {"O": [8]}),
        "carry": _cell("CARRY8", {"S": [8]}, {"O": [10]}),
    }
    ports = {"clk": {"direction": "input", "bits": [1]}, "a": {"direction": "input", "bits": [2]},
             "y": {"direction": "output", "bits": [10]},
             "z": {"direction": "output", "bits": [9]}}
    net = {"modules": {"top": {"cells": cells, "ports": ports, "netnames": {}}}}
    path: list = []
    assert report.lut_levels(net, "top", path=path) == 4
    assert [p[0] for p in path] == ["<start>", "l2", "l6", "ram", "l1", "carry"]
    # without the LUTRAM read the deepest path is the registered one: 3 levels
    del cells["ram"], cells["l1"], cells["carry"]
    del ports["y"], ports["z"]
    assert report.lut_levels(net, "top") == 3


def test_readme_table_lists_the_small_blocks():
    table = readme_table()
    assert set(SMALL_BLOCKS) <= set(table)
    assert {b for b, _, _ in report.BLOCKS} >= set(table)


@pytest.mark.slow
@pytest.mark.parametrize("block", SMALL_BLOCKS)
def test_block_lut_levels_match_readme(block):
    want = readme_table()[block]
    (rep,) = report.report([block])
    assert rep.error is None, rep.error
    assert rep.luts > 0 and rep.ffs > 0
    assert rep.lut_levels == want["lut_levels"], (block, rep.lut_levels)
    if rep.latency_cycles is not None:   # a block's declared LATENCY (others: their benches)
        assert rep.latency_cycles == want["latency"], (block, rep.latency_cycles)
    print(f"{block}: {rep.luts} LUTs, {rep.ffs} FFs, {rep.lutram} LUTRAM, {rep.dsp} DSP, "
          f"{rep.lut_levels} LUT levels")


def test_block_breakdown_of_a_hand_built_netlist():
    """Registers and memories go to the block their names place them in (the innermost listed
    instance, else the path cut to three names); the LUTs to the block whose registers they
    feed; the LUTs add up to the netlist's; each block's depth is that of the paths ending in
    it."""
    cells = {
        # pipe.book: a register fed by two LUTs in a row, one of them shared with pipe.path
        "ff_b": _cell("FDRE", {"C": [1], "D": [6]}, {"Q": [7]}),
        "l_b1": _cell("LUT2", {"I0": [2], "I1": [7]}, {"O": [5]}),
        "l_b2": _cell("LUT3", {"I0": [5]}, {"O": [6]}),
        # pipe.path.risk: a register fed by a LUT of the shared net
        "ff_r": _cell("FDRE", {"C": [1], "D": [8]}, {"Q": [9]}),
        "l_r": _cell("LUT1", {"I0": [5]}, {"O": [8]}),
        # a block RAM of the book's locate map, named after its memory
        "pipe.book.locmap.0.1": _cell("RAMB36E2", {"CLKARDCLK": [1], "ADDRARDADDR": [9]},
                                      {"DOUTADOUT": [10]}),
        # glue in a line buffer (not a listed block): its path cut to three names
        "ff_g": _cell("FDRE", {"C": [1], "D": [10]}, {"Q": [11]}),
        "l_o": _cell("LUT1", {"I0": [11]}, {"O": [12]}),
        # a register whose name was dropped, between the risk register and a LUT of its own
        "$auto$ff": _cell("FDRE", {"C": [1], "D": [9]}, {"Q": [13]}),
        "l_u": _cell("LUT1", {"I0": [13]}, {"O": [14]}),
        "ff_r2": _cell("FDRE", {"C": [1], "D": [14]}, {"Q": [15]}),
    }
    ports = {"clk": {"direction": "input", "bits": [1]}, "a": {"direction": "input", "bits": [2]},
             "y": {"direction": "output", "bits": [12]}}
    netnames = {"pipe.book.levels.w": {"bits": [7]}, "pipe.path.risk.acc": {"bits": [9]},
                "pipe.feed.linebuf_a.dfifo.r": {"bits": [11]}, "$auto$x": {"bits": [5]},
                "pipe.path.risk.acc2": {"bits": [15]}}
    net = {"modules": {"top": {"cells": cells, "ports": ports, "netnames": netnames}}}
    got = report.block_breakdown(net, "top", {"pipe.book": "book_builder",
                                              "pipe.path.risk": "risk"})
    assert got["book_builder"]["ffs"] == 1 and got["book_builder"]["bram36"] == 1
    # the unnamed register sits between risk's registers: counted in risk
    assert got["risk"]["ffs"] == 3 and got["pipe.feed.linebuf_a"]["ffs"] == 1
    assert got["ports"]["luts"] == 1
    # the shared LUT counted once, the LUTs adding up to the netlist's five
    assert got["book_builder"]["luts"] + got["risk"]["luts"] == 4
    assert sum(r["luts"] for r in got.values()) == 5
    assert got["book_builder"]["lut_levels"] == 2 and got["ports"]["lut_levels"] == 1
    assert got["risk"]["lut_levels"] == 2      # the shared LUT, then its own


def test_offchip_master_reported_with_the_memories():
    """A block with an off-chip order table (the book builder above ONCHIP_ORDER_BUCKETS)
    reports its AXI4 master's widths and the table's bytes, in the JSON's ``offchip`` and the
    table's memory column (the README table keeps its eight columns); an on-chip one none."""
    from dataclasses import asdict

    from tickwire.hw.book.builder import BookBuilder
    from tickwire.spec.capacity import ONCHIP_ORDER_BUCKETS, ORDER_LINE_BYTES
    big = BookBuilder(symbols=4, levels=64, order_buckets=ONCHIP_ORDER_BUCKETS * 4)
    off = report.offchip_ports(big)
    assert off == {"mem": {"protocol": "AXI4", "data_width": 512, "addr_width": 64,
                           "id_width": 1,
                           "bytes": ONCHIP_ORDER_BUCKETS * 4 * ORDER_LINE_BYTES}}
    assert report.offchip_ports(BookBuilder(symbols=4, levels=64,
                                            order_buckets=ONCHIP_ORDER_BUCKETS)) is None
    rep = report.BlockReport("book_builder", luts=10, ffs=5, bram36=3, uram=2, lut_levels=5,
                             offchip=off)
    assert asdict(rep)["offchip"] == off
    text = report.markdown_table([rep])
    row = next(ln for ln in text.splitlines() if ln.startswith("| book_builder"))
    cells = [c.strip() for c in row.strip().strip("|").split("|")]
    assert len(cells) == 8 and cells[3] == "3 + 2 URAM + 8 MiB off chip" and cells[6] == "5"
    assert ("book_builder off chip: mem: AXI4 master, 512-bit data, 64-bit address, 1-bit ID, "
            "8 MiB (8,388,608 bytes) off chip") in text


def test_appliance_fit_holds_the_table_against_the_targets_memory():
    """The appliance report's fit: the table's bytes against each target's off-chip memory
    (u55c: also one HBM bank); a target without off-chip memory fits no such build."""
    from dataclasses import replace

    from tickwire.hw.board.synth import appliance_markdown, fit, offchip_use
    from tickwire.hw.board.targets import TARGETS, GiB
    ports = {"mem": {"protocol": "AXI4", "data_width": 512, "addr_width": 64, "id_width": 1,
                     "bytes": 128 << 20}}
    rep = report.BlockReport("tickwire_appliance", luts=50_000, ffs=40_000, bram36=10,
                             uram=40, lutram=1_000, dsp=6, lut_levels=8, offchip=ports)
    kv, u55c = TARGETS["kv260"], TARGETS["u55c"]
    assert kv.offchip_bytes == 4 * GiB and TARGETS["zcu104"].offchip_bytes == 2 * GiB
    assert u55c.offchip_bytes == 16 * GiB and u55c.offchip_bank_bytes == GiB // 2
    share, fits = fit(kv, rep, offchip_use(kv, ports))
    assert share["offchip"] == round(128 / 4096, 4) and "offchip_bank" not in share and fits
    share, fits = fit(u55c, rep, offchip_use(u55c, ports))
    assert share["offchip_bank"] == 0.25 and fits
    share, fits = fit(kv, rep, None)
    assert "offchip" not in share and fits
    bare = replace(kv, offchip_bytes=0)
    share, fits = fit(bare, rep, offchip_use(bare, ports))
    assert share["offchip"] is None and not fits
    r = {"target": "u55c", "part": u55c.part, "capacity": {}, "seconds": 1.0,
         "report": {**{k: getattr(rep, k) for k in ("luts", "ffs", "bram36", "uram",
                                                     "lutram", "dsp", "lut_levels")},
                    "error": None, "blocks": None},
         "offchip": offchip_use(u55c, ports)}
    r["share"], r["fits"] = fit(u55c, rep, r["offchip"])
    text = appliance_markdown(r)
    assert "off chip: mem: AXI4 master, 512-bit data, 64-bit address" in text
    assert "the target's HBM2: 16 GiB (512 MiB a bank)" in text
    assert "off-chip memory 0.78% (of one bank 25%): fits" in text
