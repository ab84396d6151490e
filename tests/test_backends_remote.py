"""The device driven interactively through the Driver (writes in the middle of the stream,
counters read back), locally and through the remote server on loopback; the server's token
and one-client rules; the same run locally and remotely gives the same order frames and
counters."""

import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tickwire.backends import open_device
from tickwire.backends.emu import EmuDevice
from tickwire.backends.remote import RemoteDevice, RemoteRefused, serve_device
from tickwire.backends.wire import frames_of
from tickwire.host.cli import SAMPLE
from tickwire.host.config import load_config
from tickwire.host.driver import BusError
from tickwire.host.hostloop import run_device

STATIC = Path(__file__).resolve().parents[1] / "host" / "data" / "static_triggers.toml"
TOKEN = "test-token-7f3a"
#: frames of the bundled sample the interactive run takes (the RTL runs it in seconds)
N_FRAMES = 2000
#: the counters the interactive run checks phase by phase
WATCHED = ("frames", "messages", "book_updates", "triggers_fired", "orders_sent",
           "risk_rejects", "reject_kill")


@pytest.fixture(scope="module")
def frames():
    return frames_of(SAMPLE)[:N_FRAMES]


def interactive(dev, frames):
    """Configure with every trigger disabled, offer a third of the stream, write the static
    triggers, offer the next third, set the kill switch, offer the rest; after each third
    the counters, order frames and device time."""
    cfg = load_config(STATIC)
    trig, cfg.strategy.triggers = dict(cfg.strategy.triggers), {}
    drv = dev.driver
    drv.apply_config(cfg)
    dev.load(frames)
    steps = []

    def step(to):
        dev.advance(to)
        steps.append((dev.counters(), dev.drain().frames, dev.now()))

    n = len(frames)
    step(n // 3)
    for i, name in enumerate(cfg.symbols):
        t = trig[name]
        drv.set_trigger(i, t["buy"], t["sell"], cfg.strategy.quantity, True, True,
                        cfg.strategy.rearm)
    step(2 * n // 3)
    drv.set_kill(True)
    step(None)
    assert drv.read("STATUS").kill_active == 1
    return steps


def check_phases(steps, n):
    """What each write must have done to the counters."""
    (c1, o1, t1), (c2, o2, t2), (c3, o3, t3) = steps
    assert [c["frames"] for c in (c1, c2, c3)] == [n // 3, 2 * n // 3, n]
    assert 0 < c1["messages"] < c2["messages"] < c3["messages"]
    assert t1 < t2 < t3                                   # device time moves on
    # no trigger armed: nothing fires
    assert c1["triggers_fired"] == c1["orders_sent"] == 0 and o1 == []
    # the triggers written mid-stream fire, and every order sent left as a frame
    assert c2["orders_sent"] > 0 and len(o2) == c2["orders_sent"]
    assert c2["reject_kill"] == 0
    # the kill switch: triggers still fire, every one is rejected, no order leaves
    assert c3["triggers_fired"] > c2["triggers_fired"]
    assert c3["orders_sent"] == c2["orders_sent"] and o3 == []
    assert c3["reject_kill"] == c3["triggers_fired"] - c2["triggers_fired"]


def watched(steps):
    return [({k: c[k] for k in WATCHED}, o) for c, o, _ in steps]


@pytest.fixture(scope="module")
def emu_steps(frames):
    steps = interactive(EmuDevice(), frames)
    check_phases(steps, len(frames))
    return steps


def test_emu_interactive_remote_equals_local(frames, emu_steps):
    with serve_device(EmuDevice(), token=TOKEN) as srv:
        with RemoteDevice(*srv.address, token=TOKEN) as dev:
            assert dev.remote_kind == "emu" and dev.time_unit == "messages"
            steps = interactive(dev, frames)
    check_phases(steps, len(frames))
    assert [(c, o, t) for c, o, t in steps] == emu_steps       # every counter, every frame


def test_run_device_remote_equals_local():
    """The host loop with the static strategy on the whole sample: the same order frames
    and counters through the remote server as on the local emulator."""
    cfg = load_config(STATIC)
    frames = frames_of(SAMPLE)
    local = run_device(EmuDevice(cfg), frames, cfg, keep_rows=True)
    with serve_device(EmuDevice(cfg), token=TOKEN) as srv:
        dev = open_device("remote", host=srv.address[0], port=srv.address[1], token=TOKEN)
        with dev:
            remote = run_device(dev, frames, cfg, keep_rows=True)
    assert len(local.orders.frames) > 20 and local.counters["orders_sent"] > 20
    assert remote.orders.frames == local.orders.frames
    assert remote.counters == local.counters
    assert (remote.rows.levels == local.rows.levels).all()
    assert (remote.rows.sequence == local.rows.sequence).all()
    assert remote.backend == "remote"


@pytest.mark.rtl
def test_rtl_interactive_direct_and_remote(frames, emu_steps):
    """The Verilated appliance as a live device, driven by the Driver mid-stream: directly,
    then a fresh one through the remote server; both equal the emulator."""
    from tickwire.backends.rtl import RtlDevice
    want = watched(emu_steps)
    with RtlDevice() as rtl:
        ident = rtl.identity()
        direct = interactive(rtl, frames)
    check_phases(direct, len(frames))
    assert watched(direct) == want
    rtl = RtlDevice()
    try:
        with serve_device(rtl, token=TOKEN) as srv:
            with RemoteDevice(*srv.address, token=TOKEN) as dev:
                assert dev.remote_kind == "rtl" and dev.time_unit == "cycles"
                assert dev.identity() == ident
                remote = interactive(dev, frames)
    finally:
        rtl.close()
    check_phases(remote, len(frames))
    assert watched(remote) == want
    # the same device time: the remote path adds no cycles
    assert [t for _, _, t in remote] == [t for _, _, t in direct]


def test_token_refused(monkeypatch):
    monkeypatch.delenv("TICKWIRE_TOKEN", raising=False)
    with serve_device(EmuDevice(), token=TOKEN) as srv:
        for token in ("wrong", None, ""):
            dev = RemoteDevice(*srv.address, token=token)
            with pytest.raises(RemoteRefused, match="token"):
                dev.identity()
        monkeypatch.setenv("TICKWIRE_TOKEN", TOKEN)    # the default token
        with RemoteDevice(*srv.address) as dev:
            assert dev.identity()["build_id"] is None


def test_one_client_at_a_time():
    with serve_device(EmuDevice(), token=TOKEN) as srv:
        first = RemoteDevice(*srv.address, token=TOKEN).open()
        with pytest.raises(RemoteRefused, match="busy"):
            RemoteDevice(*srv.address, token=TOKEN).open()
        first.driver.write("CONTROL", kill=1)
        first.close()
        assert srv.wait_idle(timeout=30)
        with RemoteDevice(*srv.address, token=TOKEN) as second:
            # the device kept its state (and the posted write was flushed at close)
            assert second.driver.read("CONTROL").kill == 1


def test_bus_errors_travel():
    """An SLVERR of the device comes back as the host's BusError, for a read at once and for
    a posted write at the next request; the connection stays usable."""
    local = EmuDevice()
    with pytest.raises(BusError) as want:
        local.bus.read32(0xFFFC)
    with serve_device(EmuDevice(), token=TOKEN) as srv:
        with RemoteDevice(*srv.address, token=TOKEN) as dev:
            with pytest.raises(BusError) as got:
                dev.bus.read32(0xFFFC)
            assert (got.value.op, got.value.addr) == (want.value.op, want.value.addr)
            ident = dev.identity()
            dev.bus.write32(0x0000, 0)                        # ID is read-only
            with pytest.raises(BusError) as got:
                dev.flush()
            assert (got.value.op, got.value.addr) == ("write", 0x0000)
            assert dev.identity() == ident


def test_garbage_is_dropped_and_server_goes_on():
    with serve_device(EmuDevice(), token=TOKEN) as srv:
        with socket.create_connection(srv.address) as s:
            s.sendall(struct.pack("<I", 1 << 31) + b"junk")   # an absurd length
            try:
                reply = s.recv(100)
            except ConnectionResetError:
                reply = b""
            assert reply == b""                               # closed, no reply
        with RemoteDevice(*srv.address, token=TOKEN) as dev:
            assert dev.counters()["frames"] == 0


def test_cli_device_serve(tmp_path):
    """`tickwire device serve` on loopback, token from TICKWIRE_TOKEN; a client drives it."""
    env = dict(os.environ, TICKWIRE_TOKEN=TOKEN)
    proc = subprocess.Popen([sys.executable, "-m", "tickwire.host.cli", "device", "serve",
                             "--backend", "emu", "--port", "0"], env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert "serving emu on 127.0.0.1:" in line, line
        port = int(line.rsplit(":", 1)[1])
        with pytest.raises(RemoteRefused):
            RemoteDevice("127.0.0.1", port, token="nope").open()
        with RemoteDevice("127.0.0.1", port, token=TOKEN) as dev:
            assert dev.remote_kind == "emu"
            dev.driver.check_identity()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stderr.close()
