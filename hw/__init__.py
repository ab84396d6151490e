"""tickwire.hw"""

from .memory_init import install as _install_memory_init

# memories marked NO_INIT are converted without initial contents (hw/memory_init.py)
_install_memory_init()
