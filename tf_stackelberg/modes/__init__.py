"""Command-line modes (`--mode`), one module each, registered in `MODES`."""
