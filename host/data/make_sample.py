"""Regenerate ``sample.pcap``, the embedded default input of ``tickwire run``.

    python host/data/make_sample.py [OUTPUT]

A synthetic NASDAQ day from :func:`tickwire.host.gen.generate_day` (8 symbols, 20,000 ITCH
messages, seed 1) in MoldUDP64 over untagged Ethernet/IPv4/UDP to 233.54.12.111:26477, pcap
with nanosecond timestamps. Heartbeats every 10 s instead of NASDAQ's 1 s keep the file near
1 MB (a 1 s heartbeat over 6.5 hours alone would be ~1.8 MB). The output is byte-identical on
every run (tests/test_gen.py checks it).
"""

from __future__ import annotations

import sys
from pathlib import Path

from tickwire.host import gen

SYMBOLS, MESSAGES, SEED = 8, 20_000, 1
HEARTBEAT_NS = 10 * 1_000_000_000
SAMPLE = Path(__file__).resolve().with_name("sample.pcap")


def make(path: str | Path = SAMPLE) -> Path:
    day = gen.generate_day(SYMBOLS, MESSAGES, SEED)
    return gen.write_capture(day, path, fmt="pcap", vlan=None,
                             heartbeat_every_ns=HEARTBEAT_NS, nanosecond=True)


if __name__ == "__main__":
    out = make(sys.argv[1] if len(sys.argv) > 1 else SAMPLE)
    print(f"wrote {out} ({out.stat().st_size} bytes)")
