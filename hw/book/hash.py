"""The order table's two bucket hashes (docs/architecture.md, "Order table").

The table has two banks of ``2^b`` buckets each (``b = log2(order_buckets) - 1``):

* bank 0, **fold**: with ``q = r >> log2(order_ways)``, the XOR of the b-bit chunks of ``q``:
  ``(q ^ q>>b ^ q>>2b ^ ...) & (2^b - 1)``, chunks until the shift reaches 64 (so
  consecutive references share a bucket); one LUT level for b >= 11 (at most 6 chunks).
* bank 1, **mix32**: with ``k = (r ^ r>>32) mod 2^32``, the top b bits of
  ``k × 0x9E3779B9 mod 2^32`` (a multiplicative hash, b <= 32).

Both work on Python integers (models, tests). In gateware, :func:`order_bucket` is one
expression; mix32 comes in three steps so that the builder can put a register after each
(:func:`mix_key`, :func:`mix_products`, :func:`mix_top`): the 32 × 32-bit constant multiply is
split into three 16 × 16-bit products (one DSP each) whose sum needs only one more 16-bit add.
With b = 0 (one bucket per bank) both hashes are 0.
"""

from amaranth.hdl import Cat, Const, Value

__all__ = ["xor_fold", "order_bucket", "MIX32", "mix_bucket", "mix_key", "mix_products",
           "mix_top"]

#: the multiplier of mix32: 2^32 / golden ratio, odd
MIX32 = 0x9E3779B9


def xor_fold(ref, bits: int):
    if not isinstance(bits, int) or bits < 0 or bits > 64:
        raise ValueError(f"hash width must be an integer in 0..64, not {bits!r}")
    if isinstance(ref, int):
        if not 0 <= ref < 1 << 64:
            raise ValueError(f"reference {ref} is not an unsigned 64-bit number")
        if bits == 0:
            return 0
        h, s = 0, 0
        while s < 64:
            h ^= ref >> s
            s += bits
        return h & ((1 << bits) - 1)
    ref = Value.cast(ref)
    if ref.shape().width > 64:
        raise ValueError(f"reference must be at most 64 bits wide, not {ref.shape().width}")
    if bits == 0:
        return Const(0, 0)
    ref = Cat(ref, Const(0, 64 - ref.shape().width)) if ref.shape().width < 64 else ref
    h = ref[0:bits]
    s = bits
    while s < 64:
        chunk = ref[s:min(s + bits, 64)]
        h = h ^ chunk
        s += bits
    return h[:bits]


def order_bucket(ref, bucket_bits: int, way_bits: int):
    """Bank-0 bucket of reference ``ref``: :func:`xor_fold` of ``ref >> way_bits``."""
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


def _check_mix_bits(bits):
    if not isinstance(bits, int) or not 0 <= bits <= 32:
        raise ValueError(f"mix32 width must be an integer in 0..32, not {bits!r}")


def mix_bucket(ref: int, bits: int) -> int:
    """Bank-1 bucket of reference ``ref`` (an integer): mix32, see the module."""
    _check_mix_bits(bits)
    if not 0 <= ref < 1 << 64:
        raise ValueError(f"reference {ref} is not an unsigned 64-bit number")
    k = (ref ^ (ref >> 32)) & 0xFFFFFFFF
    return ((k * MIX32) & 0xFFFFFFFF) >> (32 - bits)


def mix_key(ref):
    """Gateware step 1: ``k``, the 64-bit reference folded to 32 bits."""
    ref = Value.cast(ref)
    if ref.shape().width != 64:
        raise ValueError(f"reference must be 64 bits wide, not {ref.shape().width}")
    return ref[0:32] ^ ref[32:64]


def mix_products(k):
    """Gateware step 2: the partial products of ``k × MIX32 mod 2^32`` as one 64-bit value
    ``Cat(kl·cl, kl·ch mod 2^16, kh·cl mod 2^16)``, where ``k = kh·2^16 + kl`` and
    ``MIX32 = ch·2^16 + cl``: the product mod 2^32 is ``kl·cl + ((kl·ch + kh·cl) mod 2^16)·2^16``
    (``kh·ch`` only reaches bit 32 and up)."""
    k = Value.cast(k)
    if k.shape().width != 32:
        raise ValueError(f"mix key must be 32 bits wide, not {k.shape().width}")
    kl, kh = k[0:16], k[16:32]
    cl, ch = Const(MIX32 & 0xFFFF, 16), Const(MIX32 >> 16, 16)
    return Cat((kl * cl)[0:32], (kl * ch)[0:16], (kh * cl)[0:16])


def mix_top(products, bits: int):
    """Gateware step 3: the bank-1 bucket (top ``bits`` bits of the product) from the
    registered partial products of :func:`mix_products`."""
    _check_mix_bits(bits)
    p = Value.cast(products)
    if p.shape().width != 64:
        raise ValueError(f"partial products must be 64 bits wide, not {p.shape().width}")
    if bits == 0:
        return Const(0, 0)
    hi = (p[16:32] + p[32:48] + p[48:64])[0:16]
    return Cat(p[0:16], hi)[32 - bits:32]
