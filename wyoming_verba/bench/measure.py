"""One request over the Wyoming protocol, timed the way Home Assistant experiences it.

Knows nothing about how the server was started: it only needs a URI. Every time is in
seconds from the moment the first text left the client (the `synthesize` in plain mode,
the first `synthesize-chunk` in streaming mode)."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.error import Error
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)


@dataclass
class Trace:
    """What happened during one request, on the client's clock."""

    text: str
    streaming: bool
    sent: list[tuple[float, int]] = field(default_factory=list)  # (time, chars) per text event
    chunks: list[tuple[float, int]] = field(default_factory=list)  # (time, bytes) per audio-chunk
    done_s: float | None = None  # audio-stop (plain) or synthesize-stopped (streaming)
    rate: int = 0
    width: int = 0
    channels: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.done_s is not None

    @property
    def first_audio_s(self) -> float | None:
        return next((t for t, n in self.chunks if n > 0), None)

    @property
    def text_done_s(self) -> float:
        """When the last text went out (the `synthesize-stop` in streaming mode)."""
        return self.sent[-1][0] if self.sent else 0.0

    @property
    def after_text_s(self) -> float | None:
        """How long the reply went on after the last text: what is left to wait for
        once an LLM has finished writing."""
        return None if self.done_s is None else self.done_s - self.text_done_s

    @property
    def audio_bytes(self) -> int:
        return sum(n for _t, n in self.chunks)

    @property
    def audio_s(self) -> float:
        per_second = self.rate * self.width * self.channels
        return self.audio_bytes / per_second if per_second else 0.0

    @property
    def underrun_s(self) -> float:
        """Silence a listener hears inside the reply: with playback starting at the first
        chunk and running in real time, the total wait for chunks that were not there yet."""
        return underrun([(t, n / (self.rate * self.width * self.channels))
                         for t, n in self.chunks if n > 0] if self.rate else [])

    @property
    def rtf(self) -> float | None:
        """Total time / audio duration (below 1: faster than real time)."""
        if self.done_s is None or not self.audio_s:
            return None
        return self.done_s / self.audio_s

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("first_audio_s", "after_text_s", "audio_bytes", "audio_s", "rtf", "ok",
                     "underrun_s"):
            data[name] = getattr(self, name)
        return data


def underrun(chunks: list[tuple[float, float]]) -> float:
    """(arrival time, seconds of audio) per chunk, in order → seconds of silence inserted
    by a player that starts with the first chunk and plays in real time."""
    if not chunks:
        return 0.0
    played_until = chunks[0][0]
    gap = 0.0
    for arrived, seconds in chunks:
        if arrived > played_until:
            gap += arrived - played_until
            played_until = arrived
        played_until += seconds
    return gap


def split_words(text: str, words_per_chunk: int) -> list[str]:
    """Cut text into chunks of `words_per_chunk` words, the way an LLM's tokens arrive:
    each chunk keeps its leading whitespace, so the chunks join back to `text`."""
    pieces = re.findall(r"\s*\S+", text)
    if not pieces:
        return [text] if text else []
    pieces[-1] += text[len("".join(pieces)):]  # trailing whitespace stays with the last
    n = max(1, words_per_chunk)
    return ["".join(pieces[i : i + n]) for i in range(0, len(pieces), n)]


def _synthesize_voice(name: str | None) -> SynthesizeVoice | None:
    return SynthesizeVoice(name=name) if name else None


class _Recorder:
    """Reads the reply and stamps every event against the shared clock origin."""

    def __init__(self, trace: Trace, clock: _Clock) -> None:
        self.trace = trace
        self.clock = clock

    async def read(self, client: AsyncClient, end_type: str) -> None:
        trace = self.trace
        while True:
            event = await client.read_event()
            now = self.clock.now()
            if event is None:
                trace.error = trace.error or "server closed the connection"
                return
            if AudioStart.is_type(event.type) and not trace.rate:
                start = AudioStart.from_event(event)
                trace.rate, trace.width, trace.channels = start.rate, start.width, start.channels
            elif AudioChunk.is_type(event.type):
                chunk = AudioChunk.from_event(event)
                if not trace.rate:  # no audio-start: take the chunk's own format
                    trace.rate, trace.width = chunk.rate, chunk.width
                    trace.channels = chunk.channels
                trace.chunks.append((now, len(chunk.audio)))
            elif Error.is_type(event.type):
                trace.error = trace.error or Error.from_event(event).text or "error event"
                if end_type == AudioStop().event().type:
                    return  # HA's plain path ends on an error
            if event.type == end_type:
                trace.done_s = now
                return


class _Clock:
    """perf_counter relative to an origin set when the first text is sent."""

    def __init__(self) -> None:
        self.origin: float | None = None

    def mark(self) -> float:
        if self.origin is None:
            self.origin = time.perf_counter()
            return 0.0
        return self.now()

    def now(self) -> float:
        return time.perf_counter() - (self.origin if self.origin is not None else 0.0)


async def measure_plain(
    uri: str, text: str, *, voice: str | None = None, time_limit: float = 60.0
) -> Trace:
    """HA's non-streaming path: one `synthesize`, read until `audio-stop`."""
    trace = Trace(text=text, streaming=False)
    clock = _Clock()
    try:
        async with AsyncClient.from_uri(uri, connect_timeout=time_limit) as client:
            event = Synthesize(text=text, voice=_synthesize_voice(voice)).event()
            trace.sent.append((clock.mark(), len(text)))
            await client.write_event(event)
            reader = _Recorder(trace, clock).read(client, AudioStop().event().type)
            await asyncio.wait_for(reader, time_limit)
    except TimeoutError:
        trace.error = f"no audio-stop within {time_limit:g} s"
    except OSError as exc:
        trace.error = f"connection failed: {exc}"
    return trace


async def measure_streaming(
    uri: str,
    text: str,
    *,
    voice: str | None = None,
    chunk_words: int = 3,
    chunk_delay: float = 0.1,
    time_limit: float = 60.0,
) -> Trace:
    """HA's streaming path with text arriving like an LLM reply: `synthesize-start`,
    a `synthesize-chunk` of `chunk_words` words every `chunk_delay` seconds, the
    compatibility `synthesize` with the full text, `synthesize-stop`; read until
    `synthesize-stopped`. The reply is read while text is still being sent."""
    trace = Trace(text=text, streaming=True)
    clock = _Clock()
    chunks = split_words(text, chunk_words)

    async def send(client: AsyncClient) -> None:
        await client.write_event(SynthesizeStart(voice=_synthesize_voice(voice)).event())
        for index, chunk in enumerate(chunks):
            if index:  # a fixed schedule from the first chunk, so delays do not drift
                await asyncio.sleep(max(0.0, index * chunk_delay - clock.now()))
            trace.sent.append((clock.mark(), len(chunk)))
            await client.write_event(SynthesizeChunk(text=chunk).event())
        await client.write_event(Synthesize(text=text, voice=_synthesize_voice(voice)).event())
        trace.sent.append((clock.mark(), 0))  # synthesize-stop: the text is complete
        await client.write_event(SynthesizeStop().event())

    try:
        async with AsyncClient.from_uri(uri, connect_timeout=time_limit) as client:
            sender = asyncio.create_task(send(client))
            reader = _Recorder(trace, clock).read(client, SynthesizeStopped().event().type)
            try:
                await asyncio.wait_for(reader, time_limit)
                await sender
            finally:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
    except TimeoutError:
        trace.error = f"no synthesize-stopped within {time_limit:g} s"
    except OSError as exc:
        trace.error = f"connection failed: {exc}"
    return trace


async def describe(uri: str, time_limit: float = 5.0) -> Info:
    """The server's `info` (raises OSError/TimeoutError when it does not answer)."""

    async def ask() -> Info:
        async with AsyncClient.from_uri(uri, connect_timeout=time_limit) as client:
            await client.write_event(Describe().event())
            while (event := await client.read_event()) is not None:
                if Info.is_type(event.type):
                    return Info.from_event(event)
        raise ConnectionError("closed before answering describe")

    return await asyncio.wait_for(ask(), time_limit)


def installed_voices(info: Info) -> list[str]:
    return [v.name for p in info.tts for v in p.voices if v.installed]
