"""Loudness across backends: the same ten household sentences spoken by each backend through
a real server, once with each backend's own level (`--loudness off`) and once at the
default target, measured with pyloudnorm (ITU-R BS.1770 integrated loudness) and a 4x
oversampled true peak.

    python -m tools.benchmarks.loudness                 # espeak, piper, edge (fake), csm (tiny)
    python -m tools.benchmarks.loudness --backends espeak,piper --json

Edge is the local fake service (real MP3 of a tone, not speech); CSM is the tiny random
checkpoint the tests build (noise, not speech): both show that the level is brought to the
target whatever a backend delivers, not what the real services sound like."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass

import numpy as np

from tests.client import speak
from wyoming_verba.audio.loudness import integrated_loudness, true_peak_db
from wyoming_verba.server import VerbaServer
from wyoming_verba.settings import load_settings

SENTENCES = [
    "The front door is locked.",
    "It is twenty one degrees in the living room.",
    "I turned off the kitchen lights.",
    "Your next appointment is at three this afternoon.",
    "The washing machine has finished.",
    "Good morning! It looks like rain today, so take an umbrella.",
    "The garage door has been open for ten minutes.",
    "I have added milk and eggs to your shopping list.",
    "The bedroom window is still open.",
    "Goodbye, and have a nice evening.",
]
ALL_BACKENDS = ("espeak", "piper", "edge", "csm")


@dataclass
class Level:
    backend: str
    loudness: str
    lufs: float
    true_peak_db: float
    clipped: int
    seconds: float


@contextlib.contextmanager
def _patched(backend: str, csm_frames: int) -> Iterator[list[str]]:
    """Flags and patches that make a backend runnable offline."""
    import pytest  # only for MonkeyPatch, which undoes what it did

    patch = pytest.MonkeyPatch()
    try:
        if backend == "csm":
            from tests.fakes.tiny_csm import shared_tiny_csm

            patch.setattr("wyoming_verba.backends.csm.stopping.frame_cap",
                          lambda text, *_: csm_frames)  # the tiny model talks until capped
            yield ["--csm-model", str(shared_tiny_csm()), "--csm-device", "cpu",
                   "--csm-seed", "1"]
        else:
            yield ["--no-piper-download"] if backend == "piper" else []
    finally:
        patch.undo()


@contextlib.asynccontextmanager
async def _edge_service() -> AsyncIterator[None]:
    import pytest

    from tests.fakes.edge_service import FakeEdge

    patch = pytest.MonkeyPatch()
    fake = await FakeEdge().start()
    fake.patch(patch)
    try:
        yield
    finally:
        await fake.stop()
        patch.undo()


async def measure(backend: str, loudness: str, data_dir: str, csm_frames: int = 25) -> Level:
    """Speak the ten sentences (one request each) and measure all of it together."""
    async with contextlib.AsyncExitStack() as stack:
        if backend == "edge":
            await stack.enter_async_context(_edge_service())
        extra = stack.enter_context(_patched(backend, csm_frames))
        settings = load_settings(["--uri", "tcp://127.0.0.1:0", "--backend", backend,
                                  "--loudness", loudness, "--data-dir", data_dir, *extra],
                                 env={})
        server = VerbaServer(settings)
        await server.start()
        try:
            uri = f"tcp://127.0.0.1:{server.port}"
            audio = b""
            for sentence in SENTENCES:
                reply = await speak(uri, sentence)
                if reply.errors:
                    raise RuntimeError(f"{backend}: {reply.errors[0].text}")
                audio += reply.audio
            rate = reply.rate
        finally:
            await server.stop()
    samples = np.frombuffer(audio, dtype="<i2")
    floats = samples.astype(np.float32) / 32768.0
    lufs = integrated_loudness(floats, rate)
    return Level(backend, loudness, round(lufs if lufs is not None else -math.inf, 2),
                 round(true_peak_db(floats, rate), 2),
                 int(np.count_nonzero(np.abs(samples.astype(np.int32)) >= 32767)),
                 round(samples.size / rate, 1))


async def run(backends: list[str], targets: list[str], data_dir: str) -> list[Level]:
    return [await measure(b, t, data_dir) for t in targets for b in backends]


def table(levels: list[Level]) -> str:
    lines = ["| backend | loudness setting | integrated LUFS | true peak dBTP | clipped | "
             "seconds |", "|---|---|---|---|---|---|"]
    lines += [f"| {v.backend} | {v.loudness} | {v.lufs} | {v.true_peak_db} | {v.clipped} | "
              f"{v.seconds} |" for v in levels]
    return "\n".join(lines)


def main() -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=",".join(ALL_BACKENDS))
    parser.add_argument("--targets", default="off,-18", help="--loudness values to compare")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        levels = asyncio.run(run(args.backends.split(","), args.targets.split(","), data_dir))
    if args.json:
        print(json.dumps([asdict(v) for v in levels], indent=2))
    else:
        print(table(levels))
        for target in args.targets.split(","):
            values = [v.lufs for v in levels if v.loudness == target]
            print(f"--loudness {target}: spread {max(values) - min(values):.2f} LU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
