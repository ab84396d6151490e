"""The fast harness's profile-guided build (``fastsim.build(h, train)``): trained once on the
counters' build, cached beside the plain build, the same outputs as the plain build and the
reference; off with TICKWIRE_SIM_PGO=0; a training run that leaves no profile is an error, and
nothing is cached."""

import numpy as np
import pytest
from amaranth import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from tickwire.sim import fastsim

pytestmark = pytest.mark.rtl


class Folder(wiring.Component):
    """Each input word updates a running value (added when even, xor-ed when odd) and sends
    it out: branchy enough that the profile has something to say."""
    i: In(stream.Signature(32))
    o: Out(stream.Signature(32))

    def elaborate(self, platform):
        m = Module()
        acc = Signal(32)
        full = Signal()
        nxt = Mux(self.i.payload[0], acc ^ self.i.payload, acc + self.i.payload)
        m.d.comb += [self.i.ready.eq(~full | self.o.ready), self.o.valid.eq(full),
                     self.o.payload.eq(acc)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += full.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [acc.eq(nxt), full.eq(1)]
        return m


def _harness(variant: str = "") -> fastsim.Harness:
    from tickwire.sim.runner import to_verilog
    return fastsim.Harness(
        "pgo_folder", lambda: to_verilog(Folder(), "pgo_folder"),
        inputs=[fastsim.StreamPort("i", 32)], outputs=[fastsim.StreamPort("o", 32)],
        key=fastsim.source_key("pgo_folder", variant, sources=("tests/test_fastsim_pgo.py",)))


def _words(seed: int, n: int = 3000) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 1 << 32, n, dtype=np.uint64)


def _run(h, words, exe=None) -> list[int]:
    recs = words.astype("<u4").view(np.uint8).reshape(-1, 4)
    (out,), _ = fastsim.run(h, [fastsim.pack_records(recs, 4)], exe=exe, random_ready=True)
    return [int.from_bytes(bytes(p), "little") for p in out["payload"]]


def _reference(words) -> list[int]:
    acc, out = 0, []
    for w in words.tolist():
        acc = (acc ^ w) if w & 1 else (acc + w) & 0xFFFFFFFF
        out.append(acc)
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A build folder of this module's own: its first profile-guided build is a new one."""
    return tmp_path_factory.mktemp("pgo") / "fastsim"


@pytest.fixture
def fresh(folder, monkeypatch):
    monkeypatch.setattr(fastsim, "BUILD", folder)
    monkeypatch.delenv("TICKWIRE_SIM_PGO", raising=False)
    return folder


def test_profile_guided_build_trains_once_caches_and_matches_the_plain_build(fresh):
    h = _harness()
    trained = []

    def train(exe):
        trained.append(exe)
        _run(h, _words(1), exe=exe)

    pgo = fastsim.build(h, train)
    assert len(trained) == 1 and trained[0] != pgo and not trained[0].exists()
    assert pgo.parent.parent.name.endswith("-pgo") and pgo.exists()
    assert not list(pgo.parent.glob("*.gcda"))        # the profile is not left behind
    assert fastsim.build(h, train) == pgo and len(trained) == 1   # cached
    plain = fastsim.build(h)
    assert plain != pgo
    words = _words(2)
    assert _run(h, words, exe=pgo) == _run(h, words, exe=plain) == _reference(words)


def test_profile_guided_build_off_gives_the_plain_build(fresh, monkeypatch):
    h = _harness()
    monkeypatch.setenv("TICKWIRE_SIM_PGO", "0")
    trained = []
    exe = fastsim.build(h, trained.append)
    assert trained == [] and exe == fastsim.build(h)
    assert not exe.parent.parent.name.endswith("-pgo")


def test_training_that_leaves_no_profile_is_an_error_and_caches_nothing(fresh):
    h = _harness("untrained")
    before = set(fresh.iterdir())
    with pytest.raises(RuntimeError, match="left no profile"):
        fastsim.build(h, lambda exe: None)
    assert set(fresh.iterdir()) - before <= {fresh / ".pgo_folder.lock"}
