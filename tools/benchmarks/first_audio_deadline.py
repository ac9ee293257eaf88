"""First audio when Edge is slow: what --first-audio-deadline buys, measured offline.

    python -m tools.benchmarks.first_audio_deadline [--delays 0,3,6] [--deadlines 0,0.8,1,1.5]

The fake Edge service of tests/fakes/edge_service.py (Edge's framing, real MP3) answers
every sentence after `delay` seconds; the chain is `edge,<fallback>` (espeak by default,
`--fallback piper` for Piper). For each delay and deadline, a new connection per request
asks for a different household sentence in an Edge voice, and the table shows first audio
at the client (p50 / max), how many replies were hedged, which backend spoke, and whether
every word was spoken once: the reply's audio is as long as the speaking backend's own
reply to the same text (±10 %), so no sentence was doubled or cut. In process, because
edge_tts can only be pointed at the fake by patching it in the same process."""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
from pathlib import Path

import pytest  # only for MonkeyPatch, which undoes the patches

from tests import client
from tests.fakes.edge_service import FakeEdge
from wyoming_verba.server import VerbaServer
from wyoming_verba.settings import load_settings

TEXTS = [
    "The front door is locked.",
    "It is twenty one degrees in the living room.",
    "The washing machine has finished.",
    "Your next meeting starts in ten minutes.",
    "The garage door was left open.",
    "Rain is expected this afternoon.",
    "The kitchen lights are off now.",
    "Good night, the alarm is armed.",
]
EDGE_VOICE = "en-US-GuyNeural"


async def start(argv: list[str], data: Path) -> VerbaServer:
    settings = load_settings(["--uri", "tcp://127.0.0.1:0", "--data-dir", str(data), *argv],
                             env={})
    server = VerbaServer(settings)
    await server.start()
    return server


async def next_record(server: VerbaServer, before: int) -> dict:
    """The request's history record: written as its reply task ends, just after the
    client has read audio-stop. `before`: how many records there were."""
    assert server.app is not None
    history = server.app.metrics.history.recent
    for _ in range(200):
        if len(history) > before:
            return history[-1]
        await asyncio.sleep(0.01)
    raise RuntimeError("no history record for the request")


async def measure(fake: FakeEdge, delay: float, deadline: float, fallback: str,
                  reference: dict[str, float], data: Path) -> dict[str, object]:
    fake.first_audio_delay = delay
    server = await start(["--backend", f"edge,{fallback}", "--first-audio-deadline",
                          str(deadline), "--edge-first-audio-timeout", "20",
                          "--edge-sentence-timeout", "30", "--loudness", "off"], data)
    firsts: list[float] = []
    hedged = whole = 0
    spoken_by: set[str] = set()
    try:
        uri = f"tcp://127.0.0.1:{server.port}"
        assert server.app is not None
        for text in TEXTS:
            before = len(server.app.metrics.history.recent)
            reply = await client.speak(uri, text, voice=EDGE_VOICE)
            assert not reply.errors, reply.errors
            firsts.append(reply.first_audio_s or 0.0)
            record = await next_record(server, before)
            hedged += bool(record["hedges"])
            spoken_by.update(record["backends"])
            expected = reference.get(f"{record['backends'][-1]}:{text}")
            if expected and abs(reply.seconds - expected) <= 0.1 * expected:
                whole += 1
    finally:
        await server.stop()
    return {"delay": delay, "deadline": deadline, "p50": statistics.median(firsts),
            "max": max(firsts), "hedged": hedged, "spoken_by": ",".join(sorted(spoken_by)),
            "once": f"{whole}/{len(TEXTS)}"}


async def references(fake: FakeEdge, fallback: str, data: Path) -> dict[str, float]:
    """Each backend's own reply length for each text (the fallback in its voice for
    en-US, the Edge voice's language)."""
    fake.first_audio_delay = 0.0
    lengths: dict[str, float] = {}
    for name in ("edge", fallback):
        server = await start(["--backend", name, "--loudness", "off"], data)
        try:
            uri = f"tcp://127.0.0.1:{server.port}"
            for text in TEXTS:
                voice = EDGE_VOICE if name == "edge" else None
                reply = await client.speak(uri, text, voice=voice, language="en-US")
                lengths[f"{name}:{text}"] = reply.seconds
        finally:
            await server.stop()
    return lengths


async def run(args: argparse.Namespace) -> None:
    delays = [float(x) for x in args.delays.split(",")]
    deadlines = [float(x) for x in args.deadlines.split(",")]
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        data = Path(tmp)
        fake = await FakeEdge().start()
        fake.patch(mp)
        try:
            reference = await references(fake, args.fallback, data)
            print("| Edge first audio after | --first-audio-deadline | first audio p50 / max "
                  "| hedged | spoken by | every word once |")
            print("|---|---|---|---|---|---|")
            for delay in delays:
                for deadline in deadlines:
                    row = await measure(fake, delay, deadline, args.fallback, reference, data)
                    print(f"| {delay:g} s | {'off' if not deadline else f'{deadline:g} s'} "
                          f"| {row['p50'] * 1000:.0f} / {row['max'] * 1000:.0f} ms "
                          f"| {row['hedged']}/{len(TEXTS)} | {row['spoken_by']} "
                          f"| {row['once']} |", flush=True)
        finally:
            await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delays", default="0,3,6", help="Edge's first-audio delays, seconds")
    parser.add_argument("--deadlines", default="0,0.8,1,1.5",
                        help="--first-audio-deadline values (0 = off)")
    parser.add_argument("--fallback", default="espeak", choices=("espeak", "piper"))
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
