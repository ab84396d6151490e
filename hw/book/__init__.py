"""Book builder gateware: symbol table, hashed order table, sorted price levels, top-N output."""

from .builder import BookBuilder, COUNTERS
from .hash import xor_fold
from .layouts import SlotState, TopLevel, book_update_layout
from .levels import LevelEngine
from .orders import OrderTable

__all__ = ["BookBuilder", "COUNTERS", "LevelEngine", "OrderTable", "SlotState", "TopLevel",
           "book_update_layout", "xor_fold"]
