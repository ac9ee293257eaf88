"""Load test on loopback: N concurrent clients x M requests against an in-process server.

Scenarios:
  fast       espeak-ng (real) alone.
  hostile    the same, with clients that misbehave the way homes do present throughout: a
             frozen satellite (asks for a long reply, then never reads; replaced by a new
             one whenever the server drops it) and `--silent` connections that never send
             anything, more than --max-connections leaves room for. Compare its first
             audio with `fast`: the others must not notice.
  saturated  a slow single-stream backend (a test tone with a delay, standing in for the
             GPU) in front of espeak; it refuses with BackendBusy once `--queue` requests
             wait, so the chain sends those sentences to espeak.

Each request opens a connection like Home Assistant does (plain `synthesize`, read until
`audio-stop`). A prober sends `describe` on a fresh connection every 100 ms throughout.
RSS is read before and after the measured requests (after a warm-up and a GC).

    python -m tools.benchmarks.load_test     # 50 clients x 20 requests, every scenario
    python -m tools.benchmarks.load_test --clients 10 --requests 5 --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from wyoming.client import AsyncClient
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize

from tests.fakes.tone_backend import Faults, ToneBackend
from wyoming_verba.backends.base import Backend, BackendBusy, Chunk, Utterance, Voice
from wyoming_verba.backends.factory import build_backends
from wyoming_verba.server import VerbaServer
from wyoming_verba.settings import load_settings

TEXT = "The kitchen lights are on. The front door is locked."
TIMEOUT = 60.0


class QueueLimited(Backend):
    """One synthesis at a time (like one GPU); refuses with BackendBusy when `limit`
    requests already wait, like CSM's --max-gpu-queue."""

    def __init__(self, inner: Backend, limit: int) -> None:
        self.inner, self.limit = inner, limit
        self.name = inner.name
        self.waiting = 0
        self.refused = 0
        self._gpu = asyncio.Lock()

    def voices(self) -> list[Voice]:
        return self.inner.voices()

    async def synthesize(
        self, text: str, voice: Voice, speaker: str | None, utterance: Utterance
    ) -> AsyncIterator[Chunk]:
        if self.waiting >= self.limit:
            self.refused += 1
            raise BackendBusy(f"{self.waiting} waiting", backend=self.name)
        self.waiting += 1
        try:
            await self._gpu.acquire()
        finally:
            self.waiting -= 1
        try:
            async for chunk in self.inner.synthesize(text, voice, speaker, utterance):
                yield chunk
        finally:
            self._gpu.release()


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Result:
    scenario: str
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    first_audio: list[float] = field(default_factory=list)
    describe: list[float] = field(default_factory=list)
    describe_errors: int = 0
    seconds: float = 0.0
    rss_before: float = 0.0
    rss_after: float = 0.0
    spoken_by: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict:
        return {
            "scenario": self.scenario,
            "requests": self.requests,
            "errors": len(self.errors),
            "requests_per_s": round(self.requests / self.seconds, 1),
            "first_audio_p50_ms": round(pct(self.first_audio, 0.5) * 1000, 1),
            "first_audio_p99_ms": round(pct(self.first_audio, 0.99) * 1000, 1),
            "describe_p99_ms": round(pct(self.describe, 0.99) * 1000, 1),
            "describe_max_ms": round(max(self.describe, default=float("nan")) * 1000, 1),
            "describe_count": len(self.describe),
            "describe_errors": self.describe_errors,
            "rss_before_mb": round(self.rss_before, 1),
            "rss_after_mb": round(self.rss_after, 1),
            "spoken_by": self.spoken_by,
            "first_errors": self.errors[:5],
        }


async def one_request(uri: str, result: Result) -> None:
    t0 = time.perf_counter()
    first = None
    try:
        async with AsyncClient.from_uri(uri) as client:
            await client.write_event(Synthesize(text=TEXT).event())
            while True:
                event = await asyncio.wait_for(client.read_event(), TIMEOUT)
                if event is None:
                    raise ConnectionError("closed before audio-stop")
                if event.type == "audio-chunk" and first is None:
                    first = time.perf_counter() - t0
                elif event.type == "error":
                    raise RuntimeError(f"error event: {event.data}")
                elif event.type == "audio-stop":
                    break
        if first is None:
            raise RuntimeError("no audio")
        result.first_audio.append(first)
    except Exception as exc:  # counted, not fatal: the point is to see them
        result.errors.append(f"{type(exc).__name__}: {exc}")
    result.requests += 1


async def prober(uri: str, result: Result, stop: asyncio.Event) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            async with AsyncClient.from_uri(uri) as client:
                await client.write_event(Describe().event())
                while not Info.is_type((await asyncio.wait_for(client.read_event(), 10)).type):
                    pass
            result.describe.append(time.perf_counter() - t0)
        except Exception:
            result.describe_errors += 1
        await asyncio.sleep(0.1)


async def load(uri: str, clients: int, requests: int, result: Result) -> None:
    async def client() -> None:
        for _ in range(requests):
            await one_request(uri, result)

    await asyncio.gather(*(client() for _ in range(clients)))


class DropCounter(logging.Handler):
    """Counts the server's "dropping it" lines: frozen clients it let go."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "dropping it" in record.getMessage():
            self.dropped += 1


async def frozen_satellites(port: int, stop: asyncio.Event) -> None:
    """Always one client that asked for a long reply and reads nothing."""
    loop = asyncio.get_running_loop()
    text = "Hello there. " + "and then " * 1100
    while not stop.is_set():
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, ("127.0.0.1", port))
            await loop.sock_sendall(sock, (json.dumps(
                {"type": "synthesize", "data": {"text": text}}) + "\n").encode())
            while not _peer_closed(sock):  # until the server drops it
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
                if stop.is_set():
                    break
        except OSError:
            await asyncio.sleep(0.1)
        finally:
            sock.close()


def _peer_closed(sock: socket.socket) -> bool:
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0 or _eof(sock)


def _eof(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


async def silent_connections(port: int, count: int, stop: asyncio.Event) -> None:
    """`count` connections that never send a byte (kept at that number)."""
    held: list[asyncio.StreamWriter] = []
    while not stop.is_set():
        held = [w for w in held if not w.is_closing()]
        while len(held) < count:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                held.append(writer)
        await asyncio.sleep(0.5)
    for writer in held:
        writer.close()


async def run_scenario(name: str, args: argparse.Namespace) -> Result:
    settings = load_settings(["--uri", "tcp://127.0.0.1:0", "--backend", "espeak",
                              "--max-connections", str(args.clients + 10),
                              "--max-text-chars", "20000"], env={})
    espeak, _ = build_backends(settings)
    slow = None
    backends: list[Backend] = list(espeak)
    if name == "saturated":
        tone = ToneBackend(name="slow-gpu", faults=Faults(first_delay=args.slow_delay))
        slow = QueueLimited(tone, args.queue)
        backends = [slow, *espeak]
    server = VerbaServer(settings, backends=backends)
    await server.start()
    serving = asyncio.create_task(server.wait())
    uri = f"tcp://127.0.0.1:{server.port}"
    result = Result(name)
    try:
        await load(uri, min(args.clients, 10), 5, Result("warm-up"))  # imports, caches, pools
        gc.collect()
        result.rss_before = rss_mb()
        stop = asyncio.Event()
        probe = asyncio.create_task(prober(uri, result, stop))
        drops = DropCounter()
        logging.getLogger("wyoming_verba.handler").addHandler(drops)
        logging.getLogger("wyoming_verba.handler").setLevel(logging.INFO)
        hostile = []
        if name == "hostile":
            hostile = [asyncio.create_task(frozen_satellites(server.port or 0, stop)),
                       asyncio.create_task(silent_connections(server.port or 0, args.silent,
                                                              stop))]
            await asyncio.sleep(1.0)  # the frozen reply fills its buffers first
        t0 = time.perf_counter()
        await load(uri, args.clients, args.requests, result)
        result.seconds = time.perf_counter() - t0
        stop.set()
        await asyncio.gather(probe, *hostile)
        logging.getLogger("wyoming_verba.handler").removeHandler(drops)
        if name == "hostile":
            result.spoken_by["frozen_dropped"] = drops.dropped
        await asyncio.sleep(0.5)  # let the handlers of connections closed just now end
        gc.collect()
        result.rss_after = rss_mb()
        result.spoken_by.update(tone_counts(slow, server))
        result.spoken_by["leaked_handlers"] = len(server.handlers)
    finally:
        await server.stop()
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
    return result


def tone_counts(slow: QueueLimited | None, server: VerbaServer) -> dict[str, int]:
    if slow is None:
        return {}
    spoken = len(slow.inner.spoken)  # type: ignore[attr-defined]
    return {"slow_sentences": spoken, "busy_refusals": slow.refused}


def table(results: list[Result]) -> str:
    cols = ["scenario", "requests", "errors", "requests_per_s", "first_audio_p50_ms",
            "first_audio_p99_ms", "describe_p99_ms", "describe_max_ms", "rss_before_mb",
            "rss_after_mb"]
    heads = ["scenario", "requests", "errors", "req/s", "first audio p50 ms",
             "first audio p99 ms", "describe p99 ms", "describe max ms", "RSS before MB",
             "RSS after MB"]
    rows = [[str(r.summary()[c]) for c in cols] for r in results]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20, help="per client")
    parser.add_argument("--scenario", choices=("fast", "saturated", "hostile", "all"),
                        default="all")
    parser.add_argument("--silent", type=int, default=20,
                        help="silent connections in the hostile scenario")
    parser.add_argument("--slow-delay", type=float, default=0.3,
                        help="seconds the slow backend takes before its first audio")
    parser.add_argument("--queue", type=int, default=4, help="slow backend's queue limit")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("wyoming_verba.request").setLevel(logging.WARNING)
    scenarios = ["fast", "hostile", "saturated"] if args.scenario == "all" else [args.scenario]
    results = [asyncio.run(run_scenario(s, args)) for s in scenarios]
    if args.json:
        print(json.dumps([r.summary() for r in results], indent=2))
    else:
        print(f"{args.clients} clients x {args.requests} requests, text: {TEXT!r}")
        print(table(results))
        for r in results:
            s = r.summary()
            print(f"{r.scenario}: {s['describe_count']} describes ({s['describe_errors']} failed), "
                  f"{s['spoken_by']}, wall {r.seconds:.1f} s, median "
                  f"{statistics.median(r.first_audio) * 1000 if r.first_audio else 0:.0f} ms")
            for error in s["first_errors"]:
                print(f"  error: {error}")
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
