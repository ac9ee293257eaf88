"""Load the way Home Assistant homes load a TTS server, against any Wyoming server URI.

Each request opens its own connection (as Home Assistant does), sends a plain `synthesize`
with one of many different household sentences (never the same one over and over: caches
and warm paths would flatter a server), and reads until `audio-stop`. A prober sends
`describe` on a fresh connection every 0.2 s throughout (Home Assistant polls every 30 s
with a 5 s timeout; 0.2 s shows stalls that a 30 s poll would hit by chance).

Measured per request: time to first audio, total time, and underrun (the silence a player
inserts if it starts with the first chunk and plays in real time). Also used by the
head-to-head scripts beside this one, which start the servers as subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wyoming.audio import AudioChunk, AudioStart
from wyoming.client import AsyncClient
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize

from wyoming_verba.bench.measure import underrun

REQUEST_TIMEOUT = 120.0
ROOT = Path(__file__).resolve().parents[2]

SUBJECTS = ["The kitchen light", "The front door", "The garage door", "The living room lamp",
            "The bedroom window", "The washing machine", "The dishwasher", "The hallway heater",
            "The back door", "The office fan", "The porch light", "The bathroom radiator"]
STATES = ["is on now.", "is off now.", "has been locked.", "is open.", "was closed a minute ago.",
          "has finished its programme.", "is at twenty one degrees.", "is on low.",
          "will turn off at ten.", "has been open for five minutes."]
FOLLOW_UPS = ["", " Anything else?", " I have noted it.", " Good night.", " It is raining outside."]


def household_texts(count: int = 600) -> list[str]:
    """`count` different sentences (one or two short sentences each)."""
    texts = []
    for i in range(count):
        subject = SUBJECTS[i % len(SUBJECTS)]
        state = STATES[(i // len(SUBJECTS)) % len(STATES)]
        follow = FOLLOW_UPS[(i // (len(SUBJECTS) * len(STATES))) % len(FOLLOW_UPS)]
        texts.append(f"{subject} {state}{follow}")
    return texts


TEXTS = household_texts()


@dataclass
class Request:
    first_audio: float | None = None
    total: float = 0.0
    underrun: float = 0.0
    audio_s: float = 0.0
    error: str | None = None


async def one_request(uri: str, text: str) -> Request:
    result = Request()
    start = time.perf_counter()
    chunks: list[tuple[float, float]] = []
    per_second = 0
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT), AsyncClient.from_uri(uri) as client:
            await client.write_event(Synthesize(text=text).event())
            while True:
                event = await client.read_event()
                if event is None:
                    raise ConnectionError("closed before audio-stop")
                if AudioStart.is_type(event.type):
                    fmt = AudioStart.from_event(event)
                    per_second = fmt.rate * fmt.width * fmt.channels
                elif AudioChunk.is_type(event.type):
                    chunk = AudioChunk.from_event(event)
                    if chunk.audio:
                        now = time.perf_counter() - start
                        if not per_second:  # a server that sends chunks without a start
                            per_second = chunk.rate * chunk.width * chunk.channels
                        chunks.append((now, len(chunk.audio) / per_second))
                        if result.first_audio is None:
                            result.first_audio = now
                elif event.type == "error":
                    raise RuntimeError(event.data.get("text"))
                elif event.type == "audio-stop":
                    break
    except Exception as exc:  # counted, not fatal: the point is to see them
        result.error = f"{type(exc).__name__}: {exc}"
    result.total = time.perf_counter() - start
    result.underrun = underrun(chunks)
    result.audio_s = sum(seconds for _t, seconds in chunks)
    return result


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass
class LoadResult:
    clients: int
    requests: list[Request] = field(default_factory=list)
    describes: list[float] = field(default_factory=list)
    wall: float = 0.0

    def summary(self) -> dict[str, float]:
        ok = [r for r in self.requests if r.error is None]
        firsts = [r.first_audio for r in ok if r.first_audio is not None]
        return {
            "clients": self.clients,
            "requests": len(self.requests),
            "errors": len(self.requests) - len(ok),
            "req_per_s": len(ok) / self.wall if self.wall else float("nan"),
            "first_audio_p50_ms": pct(firsts, 50) * 1000,
            "first_audio_p99_ms": pct(firsts, 99) * 1000,
            "underrun_p50_ms": pct([r.underrun for r in ok], 50) * 1000,
            "underrun_p99_ms": pct([r.underrun for r in ok], 99) * 1000,
            "describe_p99_ms": pct(self.describes, 99) * 1000,
            "describe_max_ms": max(self.describes, default=float("nan")) * 1000,
        }


async def describe_once(uri: str) -> float:
    start = time.perf_counter()
    async with asyncio.timeout(30), AsyncClient.from_uri(uri) as client:
        await client.write_event(Describe().event())
        while not Info.is_type((await client.read_event()).type):  # type: ignore[union-attr]
            pass
    return time.perf_counter() - start


async def run_load(uri: str, clients: int, requests_per_client: int, offset: int = 0,
                   texts: Sequence[str] = TEXTS) -> LoadResult:
    """`clients` concurrent clients, each making `requests_per_client` requests one after
    another, each with a different text (starting at `offset` in `texts`)."""
    result = LoadResult(clients)
    stop = asyncio.Event()

    async def client(index: int) -> None:
        for r in range(requests_per_client):
            text = texts[(offset + index * requests_per_client + r) % len(texts)]
            result.requests.append(await one_request(uri, text))

    async def prober() -> None:
        while not stop.is_set():
            try:
                result.describes.append(await describe_once(uri))
            except (TimeoutError, OSError):
                result.describes.append(30.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)

    probe = asyncio.create_task(prober())
    start = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    result.wall = time.perf_counter() - start
    stop.set()
    await probe
    return result


# --- servers as subprocesses -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Server:
    name: str
    uri: str
    process: subprocess.Popen


@contextlib.asynccontextmanager
async def serve(name: str, command: list[str], port: int, log: Path,
                env: dict[str, str] | None = None) -> AsyncIterator[Server]:
    """Run `command` (which must listen on `port`) until the block ends."""
    process = _spawn(command, log, env)
    uri = f"tcp://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {log}")
            try:
                await describe_once(uri)
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"{name} did not answer describe; see {log}")
        yield Server(name, uri, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def _spawn(command: list[str], log: Path, env: dict[str, str] | None) -> subprocess.Popen:
    with open(log, "wb") as out:  # the child keeps its own descriptor
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, **(env or {})})


def ours(port: int, *flags: str) -> list[str]:
    return [sys.executable, "-m", "wyoming_verba", "--uri", f"tcp://127.0.0.1:{port}", *flags]
