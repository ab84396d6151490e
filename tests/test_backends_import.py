"""A board host needs neither the emulator (numba, llvmlite) nor the HDL toolchain (Amaranth):
the driver, the shared facts and the board and remote back-ends import and work with those
imports blocked (in a subprocess, so this test's own imports do not count)."""

import subprocess
import sys
import textwrap

BLOCKER = textwrap.dedent('''
    import importlib.abc, sys
    BLOCKED = ("numba", "llvmlite", "amaranth")
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked import of {name}")
    sys.meta_path.insert(0, Block())
''')


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=120)


def test_blocker_blocks():
    r = run("import numba")
    assert r.returncode != 0 and "blocked import of numba" in r.stderr


def test_driver_and_board_backends_import_without_numba_and_amaranth():
    r = run('''
        import sys
        from tickwire.host.driver import Driver, FakeBus
        from tickwire.spec.regmap import REGMAP
        from tickwire.backends import open_device
        from tickwire.backends.base import BackendUnavailable
        import tickwire.backends.board, tickwire.backends.remote
        # what a board's host reads book rows with: the mover's map, the ring, the decoder
        from tickwire.hw.board.book_ring import MOVER_MAP, take_rows
        from tickwire.backends.wire import book_packet_rows
        assert Driver(FakeBus(MOVER_MAP), MOVER_MAP).read_raw("ID") == MOVER_MAP.map_id
        drv = Driver(FakeBus())
        ident = drv.check_identity()
        assert ident["hash"] == REGMAP.hash, ident
        drv.set_trigger(3, 1_000_000, 1_010_000, 100)
        assert drv.read_entry("TRIGGERS", 3)["buy_price"] == 1_000_000
        try:
            open_device("pynq")
        except BackendUnavailable as e:
            print("refused:", e)
        heavy = [m for m in sys.modules if m.split(".")[0] in ("numba", "llvmlite", "amaranth")]
        assert heavy == [], heavy
        print("ok")
    ''')
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout and "refused: pynq back-end" in r.stdout
