"""pytest plugin: the ``apc_emulator`` fixture (filled in by the emulator work)."""
