"""tickwire.hw.feed: line-rate feed handler gateware.

Frame parser (Ethernet/802.1Q/IPv4/UDP, per line) -> MoldUDP64 line buffer (per line) ->
A/B arbiter and sequence tracker -> ITCH 5.0 decoder, wrapped by :class:`FeedFrontEnd`.
Behaviour: docs/architecture.md, "Feed: frames and MoldUDP64".
"""

from .layouts import *  # noqa: F401,F403
from .parser import FrameParser
from .linebuf import LineSignature, MoldLineBuffer
from .tracker import MoldTracker
from .decoder import EMITTED_TYPES, FIELD_MAP, EarlyLayout, ItchDecoder, decoded_fields
from .frontend import FeedFrontEnd

__all__ = ["FrameParser", "LineSignature", "MoldLineBuffer", "MoldTracker", "ItchDecoder",
           "FeedFrontEnd", "EarlyLayout", "EMITTED_TYPES", "FIELD_MAP", "decoded_fields"]
