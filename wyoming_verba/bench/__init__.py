"""The latency comparison tool: what a Home Assistant user waits for, per backend.

`python -m wyoming_verba.bench --help`. Modules, one job each:
measure (one timed request over the Wyoming protocol), stats (percentiles, summary),
servers (reach a server: given --uri, a subprocess per backend, or in-process),
runner (warm-up and timed runs), progress (stderr bar), report (table, JSON),
plot (timeline PNG, matplotlib imported lazily), cli (the command line)."""

from .cli import amain, main

__all__ = ["amain", "main"]
