"""Edge decode path benchmark, offline against the fake Edge service.

Measures, with Edge's real framing and a realistic send pace:
  1. added latency of the decode path: the fake sends the first MP3 block → the
     backend yields the first PCM (through edge-tts over loopback), and → the first
     `audio-chunk` reaches a Wyoming client through the real server;
  2. the decoder alone on one first block;
  3. decode CPU per minute of audio (MP3 fed in Edge-sized blocks).

    python -m tools.benchmarks.edge_decode [--sentences 20] [--pace 0.06] [--block-bytes 1440]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import edge_tts.communicate
import edge_tts.drm
import edge_tts.voices
from wyoming.audio import AudioChunk
from wyoming.client import AsyncClient
from wyoming.tts import Synthesize, SynthesizeVoice

from tests.fakes.edge_service import FakeEdge, tone_mp3
from wyoming_verba.backends.base import Utterance, Voice
from wyoming_verba.backends.edge import EdgeBackend
from wyoming_verba.backends.edge.mp3 import Mp3Decoder
from wyoming_verba.pcm import Pcm
from wyoming_verba.server import VerbaServer
from wyoming_verba.settings import Settings, load_settings

WARMUP = 2  # first requests pay for imports and connection setup; not counted
SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


def point_edge_tts_at(fake: FakeEdge) -> None:
    edge_tts.communicate.WSS_URL = fake.ws_url
    edge_tts.voices.VOICE_LIST = fake.voice_list_url
    edge_tts.drm.DRM.clock_skew_seconds = 0.0
    for name in ("http_proxy", "https_proxy", "ws_proxy", "wss_proxy", "all_proxy"):
        os.environ.pop(name, None)
        os.environ.pop(name.upper(), None)


def ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return (f"median {statistics.median(values) * 1000:6.2f} ms   p95 {p95 * 1000:6.2f} ms   "
            f"max {values[-1] * 1000:6.2f} ms")


async def backend_latency(fake: FakeEdge, data_dir: Path, n: int) -> list[float]:
    backend = EdgeBackend(Settings(data_dirs=(data_dir,)))
    await backend.start()
    loop = asyncio.get_running_loop()
    out = []
    try:
        for i in range(n + WARMUP):
            first_pcm = None
            async for chunk in backend.synthesize(f"{SENTENCE} {i}", Voice("en-US-GuyNeural",
                                                  ("en-US",)), None, Utterance(str(i))):
                if isinstance(chunk, Pcm) and first_pcm is None:
                    first_pcm = loop.time()
            assert first_pcm is not None
            out.append(first_pcm - fake.block_times[-1][0])
    finally:
        await backend.stop()
    return out[WARMUP:]


async def server_latency(fake: FakeEdge, data_dir: Path, n: int) -> list[float]:
    settings = load_settings(["--uri", "tcp://127.0.0.1:0", "--backend", "edge",
                              "--data-dir", str(data_dir), "--output-rate", "24000"], env={})
    server = VerbaServer(settings)
    await server.start()
    loop = asyncio.get_running_loop()
    out = []
    try:
        for i in range(n + WARMUP):
            async with AsyncClient.from_uri(f"tcp://127.0.0.1:{server.port}") as client:
                await client.write_event(Synthesize(
                    text=f"{SENTENCE} {i}", voice=SynthesizeVoice("en-US-GuyNeural")).event())
                while True:
                    event = await asyncio.wait_for(client.read_event(), 30)
                    assert event is not None and event.type != "error", event
                    if AudioChunk.is_type(event.type):
                        out.append(loop.time() - fake.block_times[-1][0])
                        break
                # read to the end so the next request starts clean
                while event is not None and event.type != "audio-stop":
                    event = await asyncio.wait_for(client.read_event(), 30)
    finally:
        await server.stop()
    return out[WARMUP:]


def decode_first_block(block_bytes: int, repeats: int = 200) -> list[float]:
    mp3 = tone_mp3(3.0)
    out = []
    for _ in range(repeats):
        decoder = Mp3Decoder()
        start = time.perf_counter()
        pcm = decoder.feed(mp3[:block_bytes])
        out.append(time.perf_counter() - start)
        assert pcm
    return out


def decode_cpu_per_minute(block_bytes: int, repeats: int = 5) -> list[float]:
    mp3 = tone_mp3(60.0)
    out = []
    for _ in range(repeats):
        decoder = Mp3Decoder()
        start = time.process_time()
        for i in range(0, len(mp3), block_bytes):
            decoder.feed(mp3[i : i + block_bytes])
        decoder.flush()
        out.append(time.process_time() - start)
        assert abs(decoder.samples_out / 24000 - 60.0) < 0.2
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=20)
    parser.add_argument("--pace", type=float, default=0.06,
                        help="seconds between MP3 blocks (0.06 s per 1440-byte block is "
                        "4x real time, roughly what Edge delivers)")
    parser.add_argument("--block-bytes", type=int, default=1440,
                        help="MP3 bytes per websocket message (1440 = 240 ms of audio)")
    args = parser.parse_args()

    print(f"fake Edge: {args.block_bytes} B blocks every {args.pace * 1000:.0f} ms; "
          f"{args.sentences} sentences; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeEdge(pace=args.pace, block_bytes=args.block_bytes) as fake:
            point_edge_tts_at(fake)
            backend = await backend_latency(fake, Path(tmp), args.sentences)
            server = await server_latency(fake, Path(tmp), args.sentences)
    print(f"first MP3 block sent → first PCM out of the backend:    {ms(backend)}")
    print(f"first MP3 block sent → first audio-chunk at the client: {ms(server)}")
    first = decode_first_block(args.block_bytes)
    print(f"{'decoder alone, first ' + str(args.block_bytes) + ' B block:':<56}{ms(first)}")
    cpu = decode_cpu_per_minute(args.block_bytes)
    print(f"{'decode CPU per minute of audio:':<56}"
          f"median {statistics.median(cpu) * 1000:6.1f} ms   min {min(cpu) * 1000:6.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
