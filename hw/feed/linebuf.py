"""Per-line MoldUDP64 buffer: splits the parser's payload stream into a header descriptor and
the packet's remaining bytes, buffered until the A/B tracker takes the packet.

The MoldUDP64 header (payload bytes 0..19) is captured from payload words 0..2; when word 2
arrives the descriptor (session, sequence, count) is pushed and word 2 (whose lanes 4..7 hold
the first length prefix and message bytes) and every later word go to the data FIFO. Both
pushes happen only if the whole packet fits; otherwise the packet is dropped and counted in
``overflow`` (a hardware-only counter: the emulator has no buffers; it stays 0 unless the
downstream stalls for longer than ``depth`` words of traffic).

A payload that ends before the header is complete (only possible for a frame that ended
early, which the parser counts as ``ip_length``) is discarded.
"""

from amaranth import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .layouts import LineBeat, MoldHeader, PayloadBeat, mold_header

__all__ = ["MoldLineBuffer", "LineSignature"]


class LineSignature(wiring.Signature):
    """A buffered line (source side): packet descriptors and packet data, in packet order.
    The data of the packet at the head of ``desc`` is at the head of ``data`` (the first data
    beat may arrive after the descriptor)."""

    def __init__(self):
        super().__init__({
            "desc": Out(stream.Signature(MoldHeader)),
            "data": Out(stream.Signature(LineBeat)),
        })


class MoldLineBuffer(wiring.Component):
    """Members: ``i`` (In, parser payload stream, no backpressure), ``o`` (Out(LineSignature)),
    ``overflow`` (Out(counter_width)); ``level`` (data FIFO words), ``desc_room`` (a
    descriptor fits) and ``empty`` (nothing buffered) for the port walker.

    Parameters: ``depth`` data FIFO words (a packet of L payload bytes takes ceil((L-16)/8)),
    ``packets`` descriptor FIFO entries.
    """

    def __init__(self, *, depth: int = 512, packets: int = 64, counter_width: int = 32):
        if not isinstance(depth, int) or depth < 16:
            raise ValueError(f"depth must be an integer >= 16, not {depth!r}")
        if not isinstance(packets, int) or packets < 2:
            raise ValueError(f"packets must be an integer >= 2, not {packets!r}")
        self._depth = depth
        self._packets = packets
        super().__init__({
            "i": In(stream.Signature(PayloadBeat, always_ready=True)),
            "o": Out(LineSignature()),
            "overflow": Out(counter_width),
            "level": Out(range(depth + 1)),
            "desc_room": Out(1),
            "empty": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.dfifo = dfifo = SyncFIFOBuffered(width=LineBeat.size, depth=self._depth)
        # the descriptor is on ``o.desc`` the cycle after its push (unbuffered: an
        # asynchronous LUTRAM read, not SyncFIFOBuffered's second cycle), so that the
        # tracker starts its decision a cycle sooner; the data wait for that decision
        m.submodules.hfifo = hfifo = SyncFIFO(width=MoldHeader.size, depth=self._packets)
        m.d.comb += [
            self.o.data.valid.eq(dfifo.r_rdy), self.o.data.payload.eq(dfifo.r_data),
            dfifo.r_en.eq(self.o.data.ready),
            self.o.desc.valid.eq(hfifo.r_rdy), self.o.desc.payload.eq(hfifo.r_data),
            hfifo.r_en.eq(self.o.desc.ready),
            self.level.eq(dfifo.level), self.desc_room.eq(hfifo.w_rdy),
            self.empty.eq(~dfifo.r_rdy & ~hfifo.r_rdy),
        ]

        beat = self.i.payload
        q = Signal(2)            # payload word index of the next beat (saturates at 3)
        w0 = Signal(64)
        w1 = Signal(64)
        need = Signal(range(self._depth + 2))
        fits = Signal()
        writing = Signal()
        overflow = Signal.like(self.overflow)
        m.d.comb += self.overflow.eq(overflow)

        idx = Mux(beat.first, 0, q)
        lb = Signal(LineBeat)
        m.d.comb += [lb.data.eq(beat.data), lb.nbytes.eq(beat.nbytes), lb.last.eq(beat.last),
                     dfifo.w_data.eq(lb)]
        hdr = Signal(MoldHeader)
        fields = mold_header(w0, w1, beat.data)
        m.d.comb += [getattr(hdr, k).eq(v) for k, v in fields.items()]
        m.d.comb += hfifo.w_data.eq(hdr)
        with m.If(self.i.valid):
            m.d.sync += q.eq(Mux(beat.last, 0, Mux(idx == 3, 3, idx + 1)))
            with m.If(idx == 0):
                m.d.sync += [w0.eq(beat.data), writing.eq(0),
                             # words from payload byte 16 on
                             need.eq((beat.length - 9) >> 3)]
            with m.If(idx == 1):
                m.d.sync += [w1.eq(beat.data),
                             fits.eq((dfifo.level + need <= self._depth) & hfifo.w_rdy)]
            with m.If((idx == 2) & (beat.nbytes >= 4)):
                with m.If(fits):
                    m.d.comb += [hfifo.w_en.eq(1), dfifo.w_en.eq(1)]
                    m.d.sync += writing.eq(~beat.last)
                with m.Else():
                    m.d.sync += overflow.eq(overflow + 1)
            with m.If((idx == 3) & writing):
                m.d.comb += dfifo.w_en.eq(1)
                with m.If(beat.last):
                    m.d.sync += writing.eq(0)
        return m
