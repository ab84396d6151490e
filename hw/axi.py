"""AXI4 memory-mapped master signature (the off-chip memory port of the book's tables).

Only what a table in DDR/HBM needs: INCR bursts of whole bus words, one ID (responses in
order), no locks, caches or QoS. Member names are AXI's channel and signal names in lower
case, so an Amaranth port ``mem`` becomes ``mem__ar__addr``, ``mem__r__data`` ... in Verilog.
A Vivado/Vitis wrapper maps them onto an ``m_axi`` interface one to one.
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .trigger.common import check_int

__all__ = ["AXI4Signature", "BURST_INCR"]

#: AxBURST of an incrementing burst (the only kind issued)
BURST_INCR = 1


class AXI4Signature(wiring.Signature):
    """AXI4 master: ``ar``/``aw`` (address), ``w`` (write data), ``r``/``b`` (responses).

    ``addr_width`` byte-address bits, ``data_width`` bus bits (a power of two, 32..1024),
    ``id_width`` ID bits (a master that needs responses in order uses one ID).
    """

    def __init__(self, *, addr_width: int, data_width: int, id_width: int = 1):
        check_int("addr_width", addr_width, 12, 64)
        check_int("data_width", data_width, 32, 1024, pow2=True)
        check_int("id_width", id_width, 1, 16)
        self.addr_width = addr_width
        self.data_width = data_width
        self.id_width = id_width

        def address():
            return wiring.Signature({
                "valid": Out(1), "ready": In(1), "id": Out(id_width),
                "addr": Out(addr_width), "len": Out(8), "size": Out(3), "burst": Out(2)})

        super().__init__({
            "ar": Out(address()),
            "r": In(wiring.Signature({
                "valid": Out(1), "ready": In(1), "id": Out(id_width),
                "data": Out(data_width), "resp": Out(2), "last": Out(1)})),
            "aw": Out(address()),
            "w": Out(wiring.Signature({
                "valid": Out(1), "ready": In(1), "data": Out(data_width),
                "strb": Out(data_width // 8), "last": Out(1)})),
            "b": In(wiring.Signature({
                "valid": Out(1), "ready": In(1), "id": Out(id_width), "resp": Out(2)})),
        })

    @property
    def size(self) -> int:
        """AxSIZE of a whole bus word (log2 of its bytes)."""
        return (self.data_width // 8).bit_length() - 1

    def __eq__(self, other):
        return (type(other) is AXI4Signature and self.addr_width == other.addr_width
                and self.data_width == other.data_width and self.id_width == other.id_width)

    def __hash__(self):
        return hash((AXI4Signature, self.addr_width, self.data_width, self.id_width))

    def __repr__(self):
        return (f"AXI4Signature(addr_width={self.addr_width}, data_width={self.data_width}, "
                f"id_width={self.id_width})")
