"""The order table's bucket hash (docs/architecture.md, "Order table").

With ``q = r >> log2(order_ways)``, the bucket is the XOR of the B-bit chunks of ``q``:
``h = (q ^ q>>B ^ q>>2B ^ ...) & (2^B - 1)``, chunks until the shift reaches 64 (so
consecutive references share a bucket). :func:`order_bucket` and :func:`xor_fold` work on
Python integers (models, tests) and on Amaranth values (gateware: one LUT level for B >= 11,
at most 6 chunks).
"""

from amaranth.hdl import Cat, Const, Value

__all__ = ["xor_fold", "order_bucket"]


def xor_fold(ref, bits: int):
    if not isinstance(bits, int) or bits < 1 or bits > 64:
        raise ValueError(f"hash width must be an integer in 1..64, not {bits!r}")
    if isinstance(ref, int):
        if not 0 <= ref < 1 << 64:
            raise ValueError(f"reference {ref} is not an unsigned 64-bit number")
        h, s = 0, 0
        while s < 64:
            h ^= ref >> s
            s += bits
        return h & ((1 << bits) - 1)
    ref = Value.cast(ref)
    if ref.shape().width > 64:
        raise ValueError(f"reference must be at most 64 bits wide, not {ref.shape().width}")
    ref = Cat(ref, Const(0, 64 - ref.shape().width)) if ref.shape().width < 64 else ref
    h = ref[0:bits]
    s = bits
    while s < 64:
        chunk = ref[s:min(s + bits, 64)]
        h = h ^ chunk
        s += bits
    return h[:bits]


def order_bucket(ref, bucket_bits: int, way_bits: int):
    """Bucket of reference ``ref``: :func:`xor_fold` of ``ref >> way_bits``."""
    if not isinstance(way_bits, int) or not 0 <= way_bits < 64:
        raise ValueError(f"way_bits must be an integer in 0..63, not {way_bits!r}")
    if isinstance(ref, int):
        if not 0 <= ref < 1 << 64:
            raise ValueError(f"reference {ref} is not an unsigned 64-bit number")
        return xor_fold(ref >> way_bits, bucket_bits)
    ref = Value.cast(ref)
    if ref.shape().width != 64:
        raise ValueError(f"reference must be 64 bits wide, not {ref.shape().width}")
    return xor_fold(ref[way_bits:], bucket_bits)
