"""tickwire.host.emu — the software emulator: the executable definition of the pipeline."""
