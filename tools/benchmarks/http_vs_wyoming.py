"""HTTP first byte vs Wyoming first audio, for the same text and backend.

One server per backend (`python -m wyoming_verba --backend NAME --http-port P
--output-rate 24000`: both fronts in one format, so they do the same work; a subprocess on
loopback) answers both: a Wyoming client (a new connection per request,
plain `synthesize`, as Home Assistant does) and an HTTP client (a new connection per
request, `POST /v1/audio/speech`, raw HTTP/1.1 so no client library adds its own time).
Each is timed from before it connects to the first byte of audio it receives; the two
alternate, in swapped order every round, over several texts and runs. Both replies are
read to the end and their audio compared (pcm: the same number of bytes).

    python -m tools.benchmarks.http_vs_wyoming                 # espeak and piper, 10 runs
    python -m tools.benchmarks.http_vs_wyoming --backends espeak --runs 20 --formats pcm
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass, field

from wyoming.audio import AudioChunk, AudioStop
from wyoming.client import AsyncClient
from wyoming.error import Error
from wyoming.tts import Synthesize

from wyoming_verba.bench.servers import ServerStartError, free_port, subprocess_server

TEXTS = {
    "short": "The door is open.",
    "two sentences": "The kitchen lights are on. The front door is locked.",
    "long first": "It is twenty-one degrees in the living room, nineteen in the bedroom, "
                  "and the heating will switch off at ten tonight unless somebody is home.",
    "question": "Do you want me to turn off the lights in the garage as well?",
}
TIMEOUT = 60.0


@dataclass
class Pair:
    text: str
    fmt: str
    wyoming_s: list[float] = field(default_factory=list)
    http_s: list[float] = field(default_factory=list)
    deltas: list[float] = field(default_factory=list)  # http - wyoming, same round
    wyoming_bytes: list[int] = field(default_factory=list)
    http_bytes: list[int] = field(default_factory=list)


async def wyoming_first_audio(uri: str, text: str) -> tuple[float, int]:
    started = time.perf_counter()
    first = None
    size = 0
    async with AsyncClient.from_uri(uri) as client:
        await client.write_event(Synthesize(text=text).event())
        while True:
            event = await asyncio.wait_for(client.read_event(), TIMEOUT)
            if event is None or Error.is_type(event.type):
                raise RuntimeError(f"wyoming: {event}")
            if AudioChunk.is_type(event.type):
                audio = AudioChunk.from_event(event).audio
                if first is None and audio:
                    first = time.perf_counter() - started
                size += len(audio)
            elif AudioStop.is_type(event.type):
                break
    assert first is not None
    return first, size


async def http_first_byte(port: int, text: str, fmt: str) -> tuple[float, int]:
    """Raw HTTP/1.1: the time to the first byte of the (chunked) body, and its size."""
    body = json.dumps({"model": "tts-1", "voice": "alloy", "input": text,
                       "response_format": fmt}).encode()
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nConnection: close\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"http: {head.splitlines()[0].decode()}")
        first = None
        size = 0
        while True:  # chunked transfer coding: size line, data, CRLF
            line = await asyncio.wait_for(reader.readline(), TIMEOUT)
            length = int(line.strip(), 16)
            if length == 0:
                break
            await reader.readexactly(length + 2)
            if first is None:
                first = time.perf_counter() - started
            size += length
    finally:
        writer.close()
    assert first is not None
    return first, size


async def measure(backend: str, runs: int, warmup: int, formats: list[str]) -> list[Pair]:
    port = free_port()
    pairs = []
    async with subprocess_server(backend, ["--http-port", str(port),
                                           "--output-rate", "24000"]) as uri:
        for name, text in TEXTS.items():
            for fmt in formats:
                pair = Pair(name, fmt)
                for i in range(warmup + runs):
                    order = ("wyoming", "http") if i % 2 == 0 else ("http", "wyoming")
                    got = {}
                    for kind in order:
                        if kind == "wyoming":
                            got[kind] = await wyoming_first_audio(uri, text)
                        else:
                            got[kind] = await http_first_byte(port, text, fmt)
                    if i < warmup:
                        continue
                    pair.wyoming_s.append(got["wyoming"][0])
                    pair.http_s.append(got["http"][0])
                    pair.deltas.append(got["http"][0] - got["wyoming"][0])
                    pair.wyoming_bytes.append(got["wyoming"][1])
                    pair.http_bytes.append(got["http"][1])
                pairs.append(pair)
    return pairs


def p90(values: list[float]) -> float:
    return sorted(values)[max(int(round(0.9 * len(values))) - 1, 0)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def table(results: dict[str, list[Pair]], rate: int = 24000) -> str:
    """Audio seconds: Wyoming's PCM, and for pcm the HTTP body (the same speech, give or
    take the backends' own variation: espeak-ng and Piper differ run to run)."""
    lines = ["| backend | text | format | Wyoming first audio p50 / p90 ms | HTTP first byte "
             "p50 / p90 ms | HTTP − Wyoming, paired median ms | audio s (Wyoming / HTTP) |",
             "|:--|:--|:--|--:|--:|--:|--:|"]
    for backend, pairs in results.items():
        for p in pairs:
            seconds = statistics.mean(p.wyoming_bytes) / (rate * 2)
            http = (f"{statistics.mean(p.http_bytes) / (rate * 2):.2f}" if p.fmt == "pcm"
                    else "–")
            lines.append(
                f"| {backend} | {p.text} | {p.fmt} | {ms(statistics.median(p.wyoming_s))} / "
                f"{ms(p90(p.wyoming_s))} | {ms(statistics.median(p.http_s))} / "
                f"{ms(p90(p.http_s))} | {statistics.median(p.deltas) * 1000:+.1f} | "
                f"{seconds:.2f} / {http} |")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    results: dict[str, list[Pair]] = {}
    for backend in args.backends.split(","):
        try:
            results[backend] = await measure(backend, args.runs, args.warmup,
                                             args.formats.split(","))
        except ServerStartError as exc:
            print(f"{backend}: skipped: {exc}", file=sys.stderr)
    if args.json:
        print(json.dumps({b: [p.__dict__ for p in ps] for b, ps in results.items()}, indent=1))
    else:
        print(table(results))
    return 0 if results else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="espeak,piper")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--formats", default="pcm,mp3", help="response_format(s) to time")
    parser.add_argument("--json", action="store_true")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
