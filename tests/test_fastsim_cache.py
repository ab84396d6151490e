"""The fast harness's build cache stays bounded: a build keeps only its executable and sources
(``_slim``), and the least recently used builds of a design beyond ``CACHE_KEEP`` are removed,
never one used within ``CACHE_IN_USE_S`` (another test worker may be running it)."""

import os
import time

from tickwire.sim import fastsim


def _fake_build(root, name, key, used_ago_s):
    d = root / f"{name}-{key}" / "obj_dir"
    d.mkdir(parents=True)
    exe = d / f"V{name}"
    exe.write_bytes(b"exe")
    t = time.time() - used_ago_s
    os.utime(exe, (t, t))
    return d.parent


def test_evicts_least_recently_used_beyond_keep(tmp_path, monkeypatch):
    monkeypatch.setattr(fastsim, "BUILD", tmp_path)
    monkeypatch.setattr(fastsim, "CACHE_KEEP", 2)
    hour = fastsim.CACHE_IN_USE_S
    newest = _fake_build(tmp_path, "appliance", "a", 3 * hour)
    second = _fake_build(tmp_path, "appliance", "b", 4 * hour)
    old = _fake_build(tmp_path, "appliance", "c", 5 * hour)
    old_pgo = _fake_build(tmp_path, "appliance", "c-pgo", 6 * hour)
    other = _fake_build(tmp_path, "decoder", "z", 9 * hour)       # another design
    busy = tmp_path / "appliance-d.tmp123"                          # a build under way
    busy.mkdir()
    fastsim._evict("appliance")
    assert newest.exists() and second.exists()
    assert not old.exists() and not old_pgo.exists()
    assert other.exists() and busy.exists()


def test_never_evicts_a_build_in_use(tmp_path, monkeypatch):
    monkeypatch.setattr(fastsim, "BUILD", tmp_path)
    monkeypatch.setattr(fastsim, "CACHE_KEEP", 1)
    recent = [_fake_build(tmp_path, "appliance", k, 60) for k in "abc"]
    fastsim._evict("appliance")
    assert all(d.exists() for d in recent)


def test_slim_keeps_the_executable_and_sources(tmp_path):
    for f in ("Vx", "Vx.cpp", "Vx__pch.h.fast.gch", "Vx__ALL.o", "libverilated.a", "Vx__ALL.d"):
        (tmp_path / f).write_bytes(b".")
    fastsim._slim(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Vx", "Vx.cpp"]
