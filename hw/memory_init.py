"""Memories built without initial contents.

Amaranth gives every memory initial contents (zeros when ``init=[]``) and its RTLIL back-end
writes them bit by bit into one ``$meminit_v2`` cell, which Yosys then turns into one Verilog
assignment a word. For the deep levels (131,072 words of 96 bits at the defaults) that is most
of the converted design: a minute of conversion and of C++ compilation for every Verilator
build, for contents nobody reads (a deep list reads only entries it wrote; UltraRAM, where
the memory goes, cannot be initialised anyway). A memory with the attribute :data:`NO_INIT`
is emitted without the cell when its initial contents are all zeros; the Amaranth simulator
still starts it at zeros.
"""

from amaranth.back import rtlil

__all__ = ["NO_INIT", "install"]

#: Attribute of a memory (``Memory(..., attrs={NO_INIT: 1})``) whose contents need no
#: initial value.
NO_INIT = "tickwire_no_init"

_installed = False


def install() -> None:
    """Make the RTLIL back-end honour :data:`NO_INIT` (idempotent)."""
    global _installed
    if _installed:
        return
    emit = rtlil.ModuleEmitter.emit_memory

    def emit_memory(self, cell_idx, cell):
        if NO_INIT in cell.attributes and not any(cell.init):
            return
        emit(self, cell_idx, cell)

    rtlil.ModuleEmitter.emit_memory = emit_memory
    _installed = True
