"""The emulator as a device: the numba pipeline behind a model of the register file.

:class:`EmuDevice` answers the register map like the gateware (its bus is a
:class:`~tickwire.host.driver.FakeBus`, the exact model of the register file's bus rules), so
the host's own :class:`~tickwire.host.driver.Driver` configures and reads it with the same
calls as the RTL or a board. Before each :meth:`EmuDevice.advance` the register state is
applied to the emulator's tables in the order the host wrote it (pulses and table rows in
order, then the rw registers); after it, the counters, status, positions and learned symbol
names are set on the register model's inputs.

What the model leaves out: the latency registers (the emulator has no clock; they read 0)
and FEED_EXPECTED; the feed configuration (groups, checksum, sequence tracking) is taken
when the input is loaded.
"""

from __future__ import annotations

import numpy as np

from ..host.config import Config
from ..host.driver import FakeBus
from ..spec.capacity import BOOK_FIELDS, ROW_DEPTH
from ..spec.counters import COUNTER_NAMES, FEED_COUNTERS, RISK_PARAMS
from ..spec.regmap import REGMAP, STICKY_SOURCES
from ..spec.values import int_to_ip
from .base import Device, Outputs, empty_rows

__all__ = ["EmuDevice", "EmuBus"]


class EmuBus(FakeBus):
    """The register model with an ordered log of what the host's writes did: ``events`` of
    ``("pulse", port, value)`` and ``("row", table, index, fields)``."""

    def __init__(self, **capacity):
        super().__init__(REGMAP, **capacity)
        self.events: list[tuple] = []

    def write32(self, addr: int, value: int, strobe: int = 0xF) -> None:
        np_, nt = len(self.pulses), len(self.table_writes)
        super().write32(addr, value, strobe)
        self.events += [("pulse", p, v) for p, v in self.pulses[np_:]]
        self.events += [("row", t, i, f) for t, i, f in self.table_writes[nt:]]
        del self.pulses[:], self.table_writes[:]


class EmuDevice(Device):
    """The emulator behind the register map. ``config``: capacities of the emulated book
    (default: the emulator's); ``depth``: levels per book row (the host loop's strategies
    read the book from the rows)."""

    kind = "emu"
    time_unit = "messages"

    def __init__(self, config: Config | None = None, depth: int = ROW_DEPTH):
        super().__init__()
        from ..host.emu import core
        from ..host.emu.pipeline import Emulator
        self._core = core
        base = Config()
        if config is not None:
            base.capacity = config.capacity
        base.strategy.kind = "none"
        self.config = base
        self.emu = Emulator(base, depth)
        self.depth = depth
        c = base.capacity
        self.capacity = {k: getattr(c, k) for k in BOOK_FIELDS}
        self.bus = EmuBus(**self.capacity)
        self._tripped = False
        self._index = None
        self._msg = 0                   # messages processed
        self._rows: list[tuple] = []
        self._orders: list[bytes] = []
        self._times: list[int] = []
        self._seqs: list[int] = []
        self._feed_at = -1
        self._feed_counters: dict[str, int] = {}
        self._publish()

    # ---------------------------------------------------------------- input
    def load(self, frames, *, line_b=None, gaps=None, gaps_b=None) -> None:
        """Frames of line A (B merged after A: the emulator takes one arrival-ordered stream);
        indexed once with the feed configuration now in the registers."""
        from ..host.capture import Frames
        from ..host.emu import feed
        super().load(frames, line_b=line_b, gaps=gaps, gaps_b=gaps_b)
        if line_b:
            raise ValueError("emu device: merge lines A and B by arrival time before loading "
                             "(tickwire.host.capture.merge_by_time)")
        out = self.bus.outputs()
        groups = []
        for i in range(self.bus.cap["groups"]):
            e = self.bus.entry("FEED_GROUPS", i)
            if e["valid"]:
                groups.append((int_to_ip(e["ip"]), e["port"]))
        self._feed_cfg = dict(groups=groups or None,
                              check_ip_checksum=bool(out["feed_config_check_ip_checksum"]),
                              track_sequence=bool(out["feed_config_track_sequence"]))
        self._frames_np = Frames.from_list(self.frames)      # FcsError frames flagged
        self._index = feed.index_frames(self._frames_np, **self._feed_cfg)
        # message m belongs to frame frame_index[m]: the messages before frame f
        self._first_msg = np.searchsorted(self._index.frame_index,
                                          np.arange(len(self.frames) + 1))
        self._msg = 0
        self._feed_at = -1

    def load_messages(self, data: np.ndarray, offsets: np.ndarray, sequences: np.ndarray,
                      counters: dict | None = None) -> None:
        """Input already indexed into messages (a BinaryFILE): positions are messages."""
        from ..host.emu.feed import MessageIndex
        n = len(offsets)
        self.frames = [b""] * n
        self.position = 0
        self._index = MessageIndex(data, np.asarray(offsets, np.int64), np.zeros(n, np.int64),
                                   np.asarray(sequences, np.uint64), np.arange(n), "",
                                   dict(counters or {}))
        self._first_msg = np.arange(n + 1)
        self._frames_np = None
        self._msg = 0
        self._feed_at = -1

    # ---------------------------------------------------------------- registers -> tables
    def _apply(self) -> None:
        core, st, emu, bus = self._core, self.emu.state, self.emu, self.bus
        out = bus.outputs()
        rp = st.risk_params
        # the driver's own readers map the registers back to the emulator's names
        risk = self.driver.risk()
        for i, p in enumerate(RISK_PARAMS):
            if p != "kill":                 # CONTROL.kill or a trip: below
                rp[i] = risk[p]
        for ev in bus.events:
            if ev[0] == "pulse":
                _, port, _v = ev
                if port == "control_soft_reset":
                    self._soft_reset(out)
                elif port == "session_load":
                    emu._tcp_seq = out["session_seq"] & 0xFFFFFFFF
                    emu._ip_id = out["session_ip_id"] & 0xFFFF
                    st.risk_global[core.G_USER_REF] = out["orders_first_user_ref"]
                elif port == "risk_trip_clear":
                    self._tripped = False
                    st.risk_global[core.G_TOTAL_REJECTS] = 0
                elif port == "risk_load_gross":
                    st.risk_global[core.G_GROSS] = out["risk_gross_set"]
                continue
            _, table, i, f = ev
            if table == "TRIGGERS":
                st.trig[i] = [f["buy_price"], f["sell_price"], f["quantity"], f["enable_buy"],
                              f["enable_sell"], f["rearm"]]
                st.armed[i] = 1
            elif table == "RISK_SLOTS":
                st.risk_slot[i] = [f["enable"], f["ref_price"], f["max_long"], f["max_short"]]
            elif table == "POSITIONS":
                st.position[i] = f["position"]
            elif table == "SYMBOLS":
                st.names[i] = f["name"] if f["valid"] else 0
                n = 0
                while n < st.symbols and st.names[n]:
                    n += 1
                st.n_names[0] = n
        bus.events.clear()
        self._enabled = bool(out["control_enable"])
        rp[core.P_KILL] = int(bool(out["control_kill"]) or self._tripped)
        st.auto[0] = int(bool(out["control_auto"]))
        st.wire[0] = int(bool(out["control_wire_triggers"]))
        sess = self.driver.session()
        for k in ("src_mac", "dst_mac", "src_ip", "dst_ip", "src_port", "dst_port", "ack",
                  "window", "ttl", "vlan"):
            setattr(emu.config.session, k, sess[k])
        emu.config.orders.capacity = chr(ord(sess["capacity"]) & 0x7F or ord("P"))

    def _soft_reset(self, out: dict) -> None:
        """CONTROL.soft_reset: a fresh order path (hw/trigger/engine.py, hw/risk/check.py and
        hw/egress/builder.py ``clear``): trigger rows disabled and armed, collar references
        0, positions and gross 0, buckets full, no duplicate records, no trip, the order
        path's counters 0, user_ref := first_user_ref; the book keeps its state."""
        core, st = self._core, self.emu.state
        st.trig[:] = 0
        st.armed[:] = 1
        st.risk_slot[:, 1] = 0
        st.position[:] = 0
        rp = st.risk_params                 # already the registers' values (_apply)
        st.sym_bucket[:, 0] = rp[core.P_SYM_BURST]
        st.sym_bucket[:, 1] = 0
        st.dup[:] = 0
        g = st.risk_global
        g[core.G_GROSS] = g[core.G_LAST] = g[core.G_TOTAL_REJECTS] = 0
        g[core.G_TOKENS] = rp[core.P_GLB_BURST]
        g[core.G_USER_REF] = out["orders_first_user_ref"]
        st.counters[core.C_FIRED:] = 0
        self._tripped = False

    # ---------------------------------------------------------------- tables -> registers
    def _publish(self) -> None:
        core, st, emu, bus = self._core, self.emu.state, self.emu, self.bus
        prev = dict(bus.inputs)
        counters = st.counter_dict()
        counters.update(self._feed_counters_now())
        for name in FEED_COUNTERS + COUNTER_NAMES:
            if name in bus.inputs:
                bus.inputs[name] = int(counters.get(name, 0))
        kill = bool(bus.outputs()["control_kill"])
        if st.risk_params[core.P_KILL] and not kill:
            self._tripped = True
        g = st.risk_global
        bus.inputs.update({
            "status_kill_active": int(bool(st.risk_params[core.P_KILL])),
            "status_kill_tripped": int(self._tripped), "status_busy": 0,
            "risk_gross": int(g[core.G_GROSS]), "session_seq_next": emu._tcp_seq,
            "session_ip_id_next": emu._ip_id, "orders_next_user_ref": int(g[core.G_USER_REF]),
        })
        sess = (self._index.session if self._index is not None else "").encode()
        raw = int.from_bytes(sess.ljust(10, b" ")[:10], "big") if sess else 0
        bus.inputs["feed_session_lo"] = raw & ((1 << 64) - 1)
        bus.inputs["feed_session_hi"] = raw >> 64
        for port, src in STICKY_SOURCES.items():
            if bus.inputs.get(src, 0) != prev.get(src, 0):
                bus.fire(port)
        for i in range(self.capacity["symbols"]):
            bus.set_entry("POSITIONS", i, position=int(st.position[i]))
            name = int(st.names[i]) if i < st.n_names[0] else 0
            bus.set_entry("SYMBOLS", i, name=name, valid=int(name != 0))

    def _feed_counters_now(self) -> dict[str, int]:
        """The feed's counters over the frames offered so far."""
        if self._index is None:
            return {}
        if self._feed_at != self.position:
            if self._frames_np is None or self.position >= len(self.frames):
                c = dict(self._index.counters)
                c["messages"] = int(self._first_msg[self.position])
            else:
                from ..host.capture import Frames
                from ..host.emu import feed
                f = self._frames_np
                k = self.position
                pre = Frames(f.data, f.offsets[:k], f.lengths[:k], f.timestamps_ns[:k], 1,
                             fcs_bad=None if f.fcs_bad is None else f.fcs_bad[:k])
                c = dict(feed.index_frames(pre, **self._feed_cfg).counters)
            self._feed_counters, self._feed_at = c, self.position
        return self._feed_counters

    # ---------------------------------------------------------------- running
    def advance(self, to: int | None = None) -> None:
        if self._index is None:
            raise RuntimeError("emu device: load an input first")
        to = len(self.frames) if to is None else min(int(to), len(self.frames))
        self._apply()
        a, b = int(self._first_msg[self.position]), int(self._first_msg[to])
        self.input_times += self._first_msg[self.position:to].tolist()
        if b > a:
            self._run(a, b)
        self.position = to
        self._publish()

    def _run(self, a: int, b: int) -> None:
        st, idx = self.emu.state, self._index
        saved = None
        if not self._enabled:       # CONTROL.enable clear: the order path is off
            saved = st.trig[:, 3:5].copy()
            st.trig[:, 3:5] = 0
        emu = self.emu
        emu.writes.clear()
        res = emu.run(idx.data, idx.offsets[a:b], idx.sequences[a:b], {}, keep_rows=True,
                      replay_kernel=False, chunk=b - a)
        if saved is not None:
            st.trig[:, 3:5] = saved
        if res.rows is not None and len(res.rows):
            r = res.rows
            self._rows.append((r.sequence, r.timestamp, r.slot, r.levels))
        self._orders += res.orders.frames
        self._times += [a + int(m) for m in res.orders.msg]
        self._seqs += [int(q) for q in res.orders.sequence]
        self._msg = b

    def drain(self) -> Outputs:
        rows = empty_rows(self.depth)
        if self._rows:
            rows = tuple(np.concatenate([r[i] for r in self._rows]) for i in range(4))
        out = Outputs(self._orders, self._times, rows=rows, sequences=self._seqs)
        self._rows, self._orders, self._times, self._seqs = [], [], [], []
        return out

    def now(self) -> int:
        return self._msg

    def counters(self) -> dict[str, int]:
        """The counters the emulator has (the hardware-only ones it does not model)."""
        return dict(self.driver.counters(hardware=False))
