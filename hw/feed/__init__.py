"""tickwire.hw.feed: line-rate feed handler gateware.

Frame parser (Ethernet/802.1Q/IPv4/UDP, per line) -> MoldUDP64 line buffer (per line) ->
A/B arbiter and sequence tracker -> ITCH 5.0 decoder, wrapped by :class:`FeedFrontEnd`.
Behaviour: docs/architecture.md, "Feed: frames and MoldUDP64".
"""

from .layouts import *  # noqa: F401,F403
from .parser import FrameParser

__all__ = ["FrameParser"]
