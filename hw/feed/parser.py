"""Frame parser: Ethernet [802.1Q] / IPv4 / UDP at line rate, one 64-bit beat per cycle.

Checks every frame exactly as docs/architecture.md ("Feed: frames and MoldUDP64") and
:func:`tickwire.host.framing.parse_udp_frame` do, counts the first failing reason per frame,
and forwards the UDP payload (the MoldUDP64 packet) of frames that pass, realigned so that
payload byte 0 is in lane 0.

Cut-through: the payload is forwarded before the frame has ended. All header checks are known
when the first payload word leaves. A frame that ends before its IPv4 total length is an
``ip_length`` drop only when it ends before its UDP and MoldUDP64 headers (no payload beat of
it has left then: the line buffer takes a packet at its header's last byte); otherwise its
payload simply ends with the frame's last byte (docs/architecture.md "Feed: frames and
MoldUDP64").

Pipeline (cycles after the beat is registered at the input, stage A):
  A  input register, beat index; header field captures
  B  payload realignment (shift by 2 or 6 bytes), header checksum masks
  T  payload trimming to the UDP length
  D  delay until the frame's verdict is known (final, and still the frame's own, when the
     payload's first word is in D, however the frame is cut: see the gate)
  G  gating by the verdict -> output register
The frame's counters update 5 cycles after its last beat.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from tickwire.spec.capacity import GATEWARE
from tickwire.spec.counters import LINE_FRAME_COUNTERS

from ..layouts import BadRange
from ..trigger.common import check_int
from .layouts import (AxiStreamSignature, FRAME_REASONS, FRAME_STATUS_PASS, GroupEntry,
                      PayloadBeat, lane_byte, mold_header)

__all__ = ["FrameParser"]



def _be16(sig, k):
    """Big-endian 16-bit field at byte lane k (lane k is the most significant byte)."""
    return Cat(lane_byte(sig, k + 1), lane_byte(sig, k))


class FrameParser(wiring.Component):
    """Ethernet/IPv4/UDP frame checks and payload extraction for one line.

    Parameters
    ----------
    width : int
        Ingress data width in bits (64).
    groups : int
        Entries of the group filter table (>= 1).
    counter_width : int
        Width of the drop counters (they wrap).

    Members
    -------
    rx : In(AxiStreamSignature(width))
        Frames from the MAC, no FCS, one beat per cycle at most, no backpressure.
    groups : In(ArrayLayout(GroupEntry, groups))
        Host-set group table; entries with ``valid`` clear are ignored; no valid entry = accept
        every group.
    check_ip_checksum : In(1), init 1
        Verify the IPv4 header checksum (``ip_checksum``).
    o : Out(stream.Signature(PayloadBeat, always_ready=True))
        UDP payloads of the frames that pass (see :data:`~.layouts.PayloadBeat`).
    frame_status : Out(stream.Signature(range(11), always_ready=True))
        One pulse per frame: index into FRAME_REASONS, or 10 for a frame that passed.
    verdict : Out(1)
        Every header check of the frame now arriving passed (the payload gate's verdict):
        final 6 cycles after the beat holding the IPv4 header's last byte was on ``rx``, and
        the frame's own until its next frame's second beat (for the port walker,
        hw/trigger/portwalk.py).
    fcs_bad : Out(stream.Signature(BadRange, always_ready=True))
        A frame that passed ended with a bad FCS: the messages its MoldUDP64 header announced
        (none for a heartbeat or an end of session), 3 cycles after its last beat on ``rx``
        (:attr:`FCS_BAD_LATENCY`).
    runt, not_ipv4, ... mold_truncated, frames, fcs_errors : Out(counter_width)
        Drop counters by reason (names of tickwire.host.framing.FRAME_REASONS), frames in, and
        frames whose last beat had ``user`` (the MAC found the FCS wrong).
    """

    #: cycles from a frame's last beat on ``rx`` to its ``fcs_bad``
    FCS_BAD_LATENCY = 3

    def __init__(self, *, width: int = 64, groups: int = GATEWARE["groups"], counter_width: int = 32):
        if width != 64:
            raise ValueError(f"FrameParser supports width=64 only, not {width!r}")
        check_int("groups", groups, 1)
        check_int("counter_width", counter_width, 8, 64)
        self._width = width
        self._groups = groups
        self._cw = counter_width
        members = {
            "rx": In(AxiStreamSignature(width)),
            "groups": In(data.ArrayLayout(GroupEntry, groups)),
            "check_ip_checksum": In(1, init=1),
            "o": Out(stream.Signature(PayloadBeat, always_ready=True)),
            "frame_status": Out(stream.Signature(range(FRAME_STATUS_PASS + 1),
                                                 always_ready=True)),
            "verdict": Out(1),
            "fcs_bad": Out(stream.Signature(BadRange, always_ready=True)),
        }
        for name in LINE_FRAME_COUNTERS:
            members[name] = Out(counter_width)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        rx = self.rx

        # ------------------------------------------------------------------ stage A
        a_valid = Signal()
        a_data = Signal(64)
        a_nb = Signal(4)
        a_last = Signal()
        a_user = Signal()           # the MAC's bad-FCS flag, meaningful with a_last
        a_idx = Signal(12)          # beat index in the frame (saturates)
        cnt = Signal(12)
        at_start = Signal(init=1)   # the previous beat ended a frame

        nb_in = Signal(4)
        for k in range(8):          # keep is contiguous from lane 0: highest set bit + 1
            with m.If(rx.keep[k]):
                m.d.comb += nb_in.eq(k + 1)
        idx_in = Mux(rx.first | at_start, 0, cnt)
        m.d.sync += a_valid.eq(rx.valid)
        with m.If(rx.valid):
            m.d.sync += [
                a_data.eq(rx.data), a_nb.eq(nb_in), a_last.eq(rx.last), a_user.eq(rx.user),
                a_idx.eq(idx_in),
                cnt.eq(Mux(idx_in == 0xFFF, idx_in, idx_in + 1)), at_start.eq(rx.last),
            ]

        # ------------------------------------------------------------------ header captures
        h_et1 = Signal(16)
        h_vlan = Signal()
        h_et2 = Signal(16)
        h_vihl = Signal(8)
        h_total = Signal(16)
        h_ff = Signal(16)           # flags + fragment offset
        h_proto = Signal(8)
        h_dst = Signal(32)
        h_dport = Signal(16)
        h_ulen = Signal(16)

        # derived, registered (valid two cycles after the fields they use were captured)
        d_l3 = Signal(5)
        d_hend = Signal(7)          # l3 + IHL*4: end of the IPv4 header
        d_uidx = Signal(4)          # beat holding the UDP destination port and length
        d_ulo = Signal()            # ... in lanes 4..7 (else 0..3)
        d_j0 = Signal(5)            # beat holding payload byte 0 ...
        d_s6 = Signal()             # ... in lane 6 (else lane 2)
        d_need = Signal(17)         # l3 + min(total length, IHL*4 + 28): not ip_length
        d_ippay = Signal(17)        # total length - IHL*4
        d_plen = Signal(16)         # UDP length - 8
        d_hi2 = Signal(6)           # header 16-bit words are [l3/2, hi2) of the frame

        ihl = h_vihl[0:4]
        v4 = Mux(h_vlan, 4, 0)
        uoff = Signal(7)
        m.d.comb += uoff.eq(16 + v4 + (ihl << 2))
        pstart = Signal(7)
        m.d.comb += pstart.eq(22 + v4 + (ihl << 2))
        m.d.sync += [
            d_l3.eq(14 + v4),
            d_hend.eq(14 + v4 + (ihl << 2)),
            d_uidx.eq(uoff[3:7]),
            d_ulo.eq(uoff[2]),
            d_j0.eq(pstart[3:7]),
            d_s6.eq(~uoff[2]),
            d_need.eq(14 + v4 + Mux(h_total < (ihl << 2) + 28, h_total, (ihl << 2) + 28)),
            d_ippay.eq(h_total - (ihl << 2)),
            d_plen.eq(h_ulen - 8),
            d_hi2.eq(Mux(h_vlan, 9, 7) + (ihl << 1)),
        ]

        with m.If(a_valid):
            with m.If(a_idx == 1):
                m.d.sync += [
                    h_et1.eq(_be16(a_data, 4)),
                    h_vlan.eq(_be16(a_data, 4) == 0x8100),
                    h_vihl.eq(lane_byte(a_data, 6)),
                ]
            with m.If(a_idx == 2):
                m.d.sync += h_et2.eq(_be16(a_data, 0))
                with m.If(h_vlan):
                    m.d.sync += [h_vihl.eq(lane_byte(a_data, 2)), h_total.eq(_be16(a_data, 4))]
                with m.Else():
                    m.d.sync += [h_total.eq(_be16(a_data, 0)), h_ff.eq(_be16(a_data, 4)),
                                 h_proto.eq(lane_byte(a_data, 7))]
            with m.If(a_idx == 3):
                with m.If(h_vlan):
                    m.d.sync += [h_ff.eq(_be16(a_data, 0)), h_proto.eq(lane_byte(a_data, 3))]
                with m.Else():
                    m.d.sync += h_dst[16:32].eq(_be16(a_data, 6))
            with m.If(a_idx == 4):
                with m.If(h_vlan):
                    m.d.sync += h_dst.eq(Cat(_be16(a_data, 4), _be16(a_data, 2)))
                with m.Else():
                    m.d.sync += h_dst[0:16].eq(_be16(a_data, 0))
            with m.If(a_idx == d_uidx):
                m.d.sync += [
                    h_dport.eq(Mux(d_ulo, _be16(a_data, 4), _be16(a_data, 0))),
                    h_ulen.eq(Mux(d_ulo, _be16(a_data, 6), _be16(a_data, 2))),
                ]

        # ------------------------------------------------------------------ header checks
        et = Mux(h_vlan, h_et2, h_et1)
        c_not_ipv4 = Signal()
        c_vbad = Signal()           # version != 4 or IHL < 5
        c_tot_short = Signal()      # total length < IHL*4 + 8
        c_not_udp = Signal()
        c_frag = Signal()
        c_udp_len = Signal()
        c_mold_trunc = Signal()
        m.d.sync += [
            c_not_ipv4.eq(et != 0x0800),
            c_vbad.eq((h_vihl[4:8] != 4) | (ihl < 5)),
            c_tot_short.eq(h_total < (ihl << 2) + 8),
            c_not_udp.eq(h_proto != 17),
            c_frag.eq(h_ff[0:14] != 0),
            c_udp_len.eq((h_ulen < 8) | (h_ulen > d_ippay)),
            c_mold_trunc.eq(h_ulen < 28),
        ]
        n = self._groups
        c_ipm = Signal(n)
        c_portm = Signal(n)
        c_gvalid = Signal(n)
        for j in range(n):
            g = self.groups[j]
            m.d.sync += [c_ipm[j].eq(h_dst == g.ip), c_portm[j].eq(h_dport == g.port),
                         c_gvalid[j].eq(g.valid)]
        c_filt = Signal()
        m.d.sync += c_filt.eq((c_gvalid != 0) & ((c_gvalid & c_ipm & c_portm) == 0))

        # ------------------------------------------------------------------ header checksum
        b_valid = Signal()
        b_data = Signal(64)
        b_idx = Signal(12)
        m.d.sync += [b_valid.eq(a_valid), b_data.eq(a_data), b_idx.eq(a_idx)]
        s01 = Signal(17)
        s23 = Signal(17)
        s_valid = Signal()
        s_first = Signal()
        masked = []
        early = b_idx < 10                     # the header lies in frame bytes 14..77
        lo2 = Mux(h_vlan, 9, 7)
        for j in range(4):
            p = Cat(Const(j, 2), b_idx[0:4])   # frame 16-bit word index 4*idx + j (< 40)
            inhdr = early & (p >= lo2) & ((p < lo2 + 10) | (p < d_hi2))
            masked.append(Mux(inhdr, _be16(b_data, 2 * j), 0))
        m.d.sync += [s01.eq(masked[0] + masked[1]), s23.eq(masked[2] + masked[3]),
                     s_valid.eq(b_valid), s_first.eq(b_valid & (b_idx == 0))]
        acc = Signal(22)
        with m.If(s_valid):
            m.d.sync += acc.eq(Mux(s_first, 0, acc) + s01 + s23)
        csum_ok = Signal()
        m.d.sync += csum_ok.eq((acc[0:16] + acc[16:22]) == 0xFFFF)

        # verdict for cut-through forwarding: every header check (the frame-length parts of
        # runt / ip_header / ip_length hold once payload bytes exist)
        v_ok = Signal()
        m.d.sync += v_ok.eq(~(c_not_ipv4 | c_vbad | (self.check_ip_checksum & ~csum_ok)
                              | c_tot_short | c_not_udp | c_frag | c_udp_len | c_filt
                              | c_mold_trunc))
        m.d.comb += self.verdict.eq(v_ok)

        # ------------------------------------------------------------------ frame end: reason
        r0_valid = Signal()
        r0_len = Signal(15)
        m.d.sync += [r0_valid.eq(a_valid & a_last), r0_len.eq(a_nb + (a_idx << 3))]
        r1_valid = Signal()
        r1_len = Signal(15)
        m.d.sync += [r1_valid.eq(r0_valid), r1_len.eq(r0_len)]
        # at r1 (two cycles after the last beat) captures, d_* and c_* all belong to the frame
        flags = data.StructLayout({k: 1 for k in FRAME_REASONS})
        r2 = Signal(flags)
        r2_valid = Signal()
        ln = r1_len
        m.d.sync += [
            r2_valid.eq(r1_valid),
            r2.runt.eq((ln < 14) | ((h_et1 == 0x8100) & (ln < 18))),
            r2.not_ipv4.eq(c_not_ipv4),
            r2.ip_header.eq((ln <= d_l3) | c_vbad | (d_hend > ln)),
            r2.ip_length.eq(c_tot_short | (d_need > ln)),
            r2.not_udp.eq(c_not_udp),
            r2.ip_fragment.eq(c_frag),
            r2.udp_length.eq(c_udp_len),
            r2.mold_truncated.eq(c_mold_trunc),
        ]
        r3 = Signal(flags)
        r3_valid = Signal()
        m.d.sync += [r3_valid.eq(r2_valid), r3.eq(r2), r3.filtered.eq(c_filt)]
        # at r3 the checksum of the frame is final
        reason = Signal(range(FRAME_STATUS_PASS + 1))
        r3_flags = r3.as_value() | Cat(*[
            (self.check_ip_checksum & ~csum_ok) if k == "ip_checksum" else Const(0, 1)
            for k in FRAME_REASONS])
        m.d.comb += reason.eq(FRAME_STATUS_PASS)
        for i in reversed(range(len(FRAME_REASONS))):
            with m.If(r3_flags[i]):
                m.d.comb += reason.eq(i)
        st_valid = Signal()
        st_code = Signal(range(FRAME_STATUS_PASS + 1))
        m.d.sync += [st_valid.eq(r3_valid), st_code.eq(reason)]
        m.d.comb += [self.frame_status.valid.eq(st_valid), self.frame_status.payload.eq(st_code)]
        counters = {k: getattr(self, k) for k in LINE_FRAME_COUNTERS}
        cregs = {k: Signal(self._cw, name=f"cnt_{k}") for k in counters}
        # The MAC's verdict on the FCS comes with the last beat, after the frame's messages
        # have gone on: the frame is only counted (docs/architecture.md "Bad FCS").
        fcs_bad = Signal()
        m.d.sync += fcs_bad.eq(rx.valid & rx.last & rx.user)
        with m.If(fcs_bad):
            m.d.sync += cregs["fcs_errors"].eq(cregs["fcs_errors"] + 1)
        with m.If(st_valid):
            m.d.sync += cregs["frames"].eq(cregs["frames"] + 1)
            for i, k in enumerate(FRAME_REASONS):
                with m.If(st_code == i):
                    m.d.sync += cregs[k].eq(cregs[k] + 1)
        for k, port in counters.items():
            m.d.comb += port.eq(cregs[k])

        # ------------------------------------------------------------------ payload realign
        prev = Signal(64)
        with m.If(a_valid):
            m.d.sync += prev.eq(a_data)
        s6 = d_s6
        s_bytes = Mux(s6, 6, 2)
        main_data = Mux(s6, Cat(prev[48:64], a_data[0:48]), Cat(prev[16:64], a_data[0:16]))
        tail_data = Mux(s6, a_data[48:64], a_data[16:64])
        # payload byte 0 is at least at frame byte 42 (beat 5): before beat 5 the d_* values
        # may still be the previous frame's
        has_tail = a_last & (a_idx >= d_j0) & (a_idx >= 5) & (a_nb > s_bytes)
        main_ok = (a_idx > d_j0) & (a_idx >= 6)
        main_avail = Mux(a_last & (a_nb < s_bytes), 8 - s_bytes + a_nb, 8)

        w_valid = Signal()
        w_data = Signal(64)
        w_avail = Signal(4)
        w_first = Signal()
        w_fend = Signal()
        w_bad = Signal()            # with w_fend: the frame's FCS is bad
        w_end = Signal()            # the first word from the frame's last beat
        tl_valid = Signal()
        tl_data = Signal(64)
        tl_avail = Signal(4)
        tl_first = Signal()
        tl_bad = Signal()
        tl_solo = Signal()          # the tail is the only word of its beat
        m.d.sync += [w_valid.eq(0), tl_valid.eq(0)]
        with m.If(tl_valid):
            m.d.sync += [w_valid.eq(1), w_data.eq(tl_data), w_avail.eq(tl_avail),
                         w_first.eq(tl_first), w_fend.eq(1), w_bad.eq(tl_bad),
                         w_end.eq(tl_solo)]
        with m.Elif(a_valid & main_ok):
            m.d.sync += [w_valid.eq(1), w_data.eq(main_data), w_avail.eq(main_avail),
                         w_first.eq(a_idx == d_j0 + 1), w_fend.eq(a_last & ~has_tail),
                         w_bad.eq(a_user), w_end.eq(a_last)]
        with m.If(a_valid & has_tail):
            m.d.sync += [tl_valid.eq(1), tl_data.eq(tail_data), tl_avail.eq(a_nb - s_bytes),
                         tl_first.eq(a_idx == d_j0), tl_bad.eq(a_user), tl_solo.eq(~main_ok)]

        # ------------------------------------------------------------------ T: trim
        t_active = Signal()
        t_rem = Signal(16)
        t_len = Signal(16)
        p_valid = Signal()
        p = Signal(PayloadBeat)
        m.d.sync += p_valid.eq(0)
        rem = Mux(w_first, d_plen, t_rem)
        plen_now = Mux(w_first, d_plen, t_len)
        take = Signal(4)
        m.d.comb += take.eq(Mux(rem < w_avail, rem, w_avail))
        is_last = (rem <= w_avail) | w_fend
        with m.If(w_valid):
            with m.If(w_first | t_active):
                m.d.sync += [t_rem.eq(rem - take), t_len.eq(plen_now), t_active.eq(~is_last),
                             p_valid.eq(1), p.data.eq(w_data), p.nbytes.eq(take),
                             p.first.eq(w_first), p.last.eq(is_last), p.length.eq(plen_now)]
            with m.If(w_fend):
                m.d.sync += t_active.eq(0)

        # ------------------------------------------------------------------ bad FCS: messages
        # The MoldUDP64 sequence (payload bytes 10-17) and count (18-19) come in the payload's
        # words 1 and 2; the verdict is sampled with word 2 (final by then: word 2 is here 6
        # cycles or more after the beat holding the IPv4 header's last byte was on ``rx``).
        # The range goes out the cycle after the first word from the frame's last beat: the
        # payload's own delay until the verdict (D, G) is not waited for.
        pw = Signal(2)              # payload words before the one in w (saturates at 3)
        w_idx = Mux(w_first, 0, pw)
        w1 = Signal(64)             # payload word 1 (sequence bytes 10-15 in lanes 2-7)
        r_lo = Signal(64)
        r_hi = Signal(64)
        r_ok = Signal()             # word 2 of this frame's payload seen, the frame passed,
                                    # count 1..0xFFFE (cleared at each frame's end)
        hdr = mold_header(None, w1, w_data)
        seq, count = hdr["sequence"], hdr["count"]
        now_hi = Signal(64)
        now_ok = Signal()
        m.d.comb += [now_hi.eq((seq + count)[:64]),
                     now_ok.eq(v_ok & (count != 0) & (count != 0xFFFF))]
        w2 = w_idx == 2
        with m.If(w_valid):
            m.d.sync += pw.eq(Mux(w_idx == 3, 3, w_idx + 1))
            with m.If(w_idx == 1):
                m.d.sync += w1.eq(w_data)
            with m.If(w2):
                m.d.sync += [r_lo.eq(seq), r_hi.eq(now_hi), r_ok.eq(now_ok)]
            with m.If(w_fend):
                m.d.sync += r_ok.eq(0)
        # (word 2 itself may come from the last beat: a frame cut short after the header)
        fb = self.fcs_bad
        m.d.sync += [fb.valid.eq(w_valid & w_end & w_bad & Mux(w2, now_ok, r_ok)),
                     fb.payload.lo.eq(Mux(w2, seq, r_lo)), fb.payload.hi.eq(Mux(w2, now_hi, r_hi))]

        # ------------------------------------------------------------------ delay and gate
        # v_ok is final 5 cycles after the beat ending the IPv4 header was in A (its
        # checksum; the UDP length, a beat later at most, 3). The payload's first word is in D
        # 3 cycles after its last beat was in A, which is 2 beats after the header's at least,
        # or 4 cycles after a tail (a frame's last beat, 1 after the header's at least): v_ok
        # is final in D. It is still the frame's: the next frame's second beat, the first to
        # change it, is in A 2 cycles after this frame's last at the earliest and changes v_ok
        # 3 cycles later.
        dly_valid = Signal()
        dly = Signal(PayloadBeat)
        m.d.sync += [dly_valid.eq(p_valid), dly.eq(p)]
        g_pass = Signal()
        pass_now = Mux(dly.first, v_ok, g_pass)
        with m.If(dly_valid & dly.first):
            m.d.sync += g_pass.eq(v_ok)
        o_valid = Signal()
        o = Signal(PayloadBeat)
        m.d.sync += [o_valid.eq(dly_valid & pass_now), o.eq(dly)]
        m.d.comb += [self.o.valid.eq(o_valid), self.o.payload.eq(o)]
        return m
