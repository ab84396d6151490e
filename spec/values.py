"""Encodings of values that cross the host/device boundary: symbols, MAC and IPv4 addresses."""

from __future__ import annotations

__all__ = ["TICK", "pack_symbol", "unpack_symbol", "ip_to_int", "int_to_ip", "ip_to_bytes",
           "mac_to_bytes", "bytes_to_mac", "mac_to_int"]

#: One cent in ITCH price units (4 implied decimals): the tick of US equities above $1.
TICK = 100


def pack_symbol(name: str) -> int:
    """8-byte space-padded ASCII symbol as a big-endian integer (first character most
    significant), as ITCH carries it and the SYMBOLS table holds it."""
    b = name.encode("ascii")
    if not 1 <= len(b) <= 8:
        raise ValueError(f"symbol {name!r}: must be 1..8 ASCII characters")
    return int.from_bytes(b.ljust(8, b" "), "big")


def unpack_symbol(v: int) -> str:
    """The symbol text of a packed value (trailing spaces, and the NULs of an empty slot,
    stripped)."""
    return int(v).to_bytes(8, "big").decode("latin-1").rstrip(" \0")


def ip_to_int(ip: str | int | bytes) -> int:
    """``"a.b.c.d"`` (or an int, or 4 bytes) to the 32-bit integer."""
    if isinstance(ip, int):
        if not 0 <= ip < 1 << 32:
            raise ValueError(f"IPv4 address {ip} out of range")
        return ip
    if isinstance(ip, (bytes, bytearray)):
        if len(ip) != 4:
            raise ValueError(f"IPv4 address needs 4 bytes, got {len(ip)}")
        return int.from_bytes(ip, "big")
    parts = ip.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise ValueError(f"bad IPv4 address {ip!r}")
    return int.from_bytes(bytes(int(p) for p in parts), "big")


def int_to_ip(v: int) -> str:
    return ".".join(str(b) for b in int(v).to_bytes(4, "big"))


def ip_to_bytes(ip: str | int | bytes) -> bytes:
    return ip_to_int(ip).to_bytes(4, "big")


def mac_to_bytes(mac: str | bytes | int) -> bytes:
    """``"aa:bb:cc:dd:ee:ff"`` (``-`` also accepted), 6 bytes or a 48-bit int to 6 bytes."""
    if isinstance(mac, int):
        if not 0 <= mac < 1 << 48:
            raise ValueError(f"MAC address {mac:#x} out of range")
        return mac.to_bytes(6, "big")
    if isinstance(mac, (bytes, bytearray)):
        if len(mac) != 6:
            raise ValueError(f"MAC address needs 6 bytes, got {len(mac)}")
        return bytes(mac)
    parts = mac.replace("-", ":").split(":")
    try:
        out = bytes(int(p, 16) for p in parts)
    except ValueError:
        out = b""
    if len(parts) != 6 or len(out) != 6 or any(len(p) not in (1, 2) for p in parts):
        raise ValueError(f"bad MAC address {mac!r}")
    return out


def mac_to_int(mac: str | bytes | int) -> int:
    return int.from_bytes(mac_to_bytes(mac), "big")


def bytes_to_mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)
