"""The latency bench for the `edge` backend, offline: against the fake Edge service of
tests/fake_edge.py (Edge's real framing, real MP3), sent at a realistic pace.

The server runs in-process (`--in-process`) because edge_tts can only be pointed at the
fake by patching it in the same process. The fake adds no service latency of its own
(`--first-delay` adds some); what is measured is our path: edge-tts over loopback, MP3
decode, resampling, the Wyoming server.

    python -m tools.benchmarks.bench_fake_edge [--pace 0.06] [--block-bytes 1440] \
        [--first-delay 0] [any `python -m wyoming_verba.bench` option, e.g. --streaming]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile

import pytest  # only for MonkeyPatch, which undoes the patches

from tests.fakes.edge_service import FakeEdge
from wyoming_verba.bench import amain


class SlowStartEdge(FakeEdge):
    """The fake, waiting `first_delay` seconds before the first audio of each turn,
    like the real service's synthesis time."""

    def __init__(self, *args, first_delay: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.first_delay = first_delay

    async def _stream_audio(self, *args, **kwargs) -> None:
        if self.first_delay:
            await asyncio.sleep(self.first_delay)
        await super()._stream_audio(*args, **kwargs)


async def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pace", type=float, default=0.06, help="seconds between MP3 blocks")
    parser.add_argument("--block-bytes", type=int, default=1440, help="MP3 bytes per block")
    parser.add_argument("--first-delay", type=float, default=0.0,
                        help="seconds before each turn's first block")
    args, bench_args = parser.parse_known_args(argv)
    with tempfile.TemporaryDirectory() as data, pytest.MonkeyPatch.context() as mp:
        async with SlowStartEdge(pace=args.pace, block_bytes=args.block_bytes,
                                 first_delay=args.first_delay) as fake:
            fake.patch(mp)
            # A private data dir: the fake's voice list must not land in the user's cache.
            return await amain(["--in-process", "--backend", "edge",
                                f"--server-arg=--data-dir={data}", *bench_args])


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(run(sys.argv[1:])))
