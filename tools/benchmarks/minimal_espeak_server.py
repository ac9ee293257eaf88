"""The smallest Wyoming TTS server on the same espeak-ng library: the yardstick for what
wyoming-verba's own machinery costs (`python -m tools.benchmarks.head_to_head --pair espeak`).

No splitting, cleaning, resampling, failover or limits: each `synthesize` is spoken by
espeak-ng on its one thread and every 22,050 Hz block goes out as an `audio-chunk` as it is
produced; `describe` lists one voice. Its blocks are as long as wyoming-verba's unless
`--block-ms` says otherwise (the issue that set the yardstick measured 200 ms blocks).

    python -m tools.benchmarks.minimal_espeak_server --port 10300 [--block-ms 200]"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from concurrent.futures import ThreadPoolExecutor

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import async_read_event, async_write_event
from wyoming.info import Attribution, Describe, Info, TtsProgram, TtsVoice
from wyoming.tts import Synthesize

from wyoming_verba.backends.espeak.library import BUFFER_MS, library_paths, load_engine

_DONE = object()


async def main(port: int, block_ms: int) -> None:
    loop = asyncio.get_running_loop()
    # The plain asyncio way: one thread, every call into the engine on it.
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="espeak")
    engine = await loop.run_in_executor(executor, load_engine, *library_paths(), 0, block_ms)
    identifier = next(e.identifier for e in engine.entries if e.voice.name == "en-us")
    who = Attribution(name="eSpeak NG", url="https://github.com/espeak-ng/espeak-ng")
    info = Info(tts=[TtsProgram(
        name="minimal", description="minimal espeak-ng server", attribution=who,
        installed=True, version="1", voices=[TtsVoice(
            name="en-us", description="espeak-ng", attribution=who, installed=True,
            version=None, languages=["en-US"])])])

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (event := await async_read_event(reader)) is not None:
                if Describe.is_type(event.type):
                    await async_write_event(info.event(), writer)
                elif Synthesize.is_type(event.type):
                    await speak(Synthesize.from_event(event).text, writer)
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def speak(text: str, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[object] = asyncio.Queue()

        def emit(block: bytes) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, block)

        def work() -> None:
            try:
                engine.speak(text, identifier, emit, lambda: False)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        loop.run_in_executor(executor, work)
        await async_write_event(AudioStart(engine.rate, 2, 1).event(), writer)
        while (block := await queue.get()) is not _DONE:
            assert isinstance(block, bytes)
            await async_write_event(AudioChunk(engine.rate, 2, 1, block).event(), writer)
        await async_write_event(AudioStop().event(), writer)

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=10300)
    parser.add_argument("--block-ms", type=int, default=BUFFER_MS,
                        help=f"espeak-ng's block length (default {BUFFER_MS}, as ours)")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.port, args.block_ms))
    sys.exit(0)
