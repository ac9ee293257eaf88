"""A Wyoming TTS client for tests, driving the server the way Home Assistant does."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import numpy as np
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)

TIMEOUT = 60.0


@dataclass
class Reply:
    events: list[Event] = field(default_factory=list)
    audio: bytes = b""
    rate: int = 0
    width: int = 0
    channels: int = 0
    chunk_formats: set[tuple[int, int, int]] = field(default_factory=set)
    first_audio_s: float | None = None
    started: float = field(default_factory=time.perf_counter)

    @property
    def errors(self) -> list[Error]:
        return [Error.from_event(e) for e in self.events if Error.is_type(e.type)]

    @property
    def types(self) -> list[str]:
        return [e.type for e in self.events]

    @property
    def seconds(self) -> float:
        return len(self.audio) / (self.rate * self.width * self.channels) if self.rate else 0.0

    @property
    def samples(self) -> np.ndarray:
        return np.frombuffer(self.audio, dtype="<i2")

    def rms(self) -> float:
        s = self.samples.astype(np.float64)
        return float(np.sqrt(np.mean(s**2))) if len(s) else 0.0

    def add(self, event: Event) -> None:
        self.events.append(event)
        if AudioStart.is_type(event.type) and not self.rate:
            start = AudioStart.from_event(event)
            self.rate, self.width, self.channels = start.rate, start.width, start.channels
        elif AudioChunk.is_type(event.type):
            chunk = AudioChunk.from_event(event)
            self.chunk_formats.add((chunk.rate, chunk.width, chunk.channels))
            if self.first_audio_s is None and chunk.audio:
                self.first_audio_s = time.perf_counter() - self.started
            self.audio += chunk.audio


def _voice(voice: str | None, speaker: str | None, language: str | None) -> SynthesizeVoice | None:
    if voice is None and language is None:
        return None
    return SynthesizeVoice(name=voice, speaker=speaker, language=language)


async def read_until(
    client: AsyncClient, reply: Reply, *types: str, stop_on_error: bool = True
) -> Reply:
    """Read events into `reply` until one of `types` (or, if asked, an error) arrives."""
    while True:
        event = await asyncio.wait_for(client.read_event(), TIMEOUT)
        assert event is not None, f"server closed the connection; got {reply.types}"
        reply.add(event)
        if event.type in types or (stop_on_error and Error.is_type(event.type)):
            return reply


async def describe(uri: str) -> Info:
    async with AsyncClient.from_uri(uri) as client:
        await client.write_event(Describe().event())
        while True:
            event = await asyncio.wait_for(client.read_event(), TIMEOUT)
            assert event is not None
            if Info.is_type(event.type):
                return Info.from_event(event)


async def speak(
    uri: str,
    text: str,
    *,
    voice: str | None = None,
    speaker: str | None = None,
    language: str | None = None,
    text_format: str | None = None,
) -> Reply:
    """Home Assistant's non-streaming path: one `synthesize`, read until `audio-stop`."""
    async with AsyncClient.from_uri(uri) as client:
        reply = Reply()
        await client.write_event(
            Synthesize(text=text, voice=_voice(voice, speaker, language),
                       text_format=text_format).event()
        )
        return await read_until(client, reply, AudioStop().event().type)


async def speak_streaming(
    uri: str,
    chunks: list[str],
    *,
    voice: str | None = None,
    speaker: str | None = None,
    delay: float = 0.0,
    client: AsyncClient | None = None,
) -> Reply:
    """Home Assistant's streaming path: synthesize-start, chunks, the compatibility
    `synthesize` with the full text, synthesize-stop; read until synthesize-stopped."""

    async def run(c: AsyncClient) -> Reply:
        reply = Reply()
        sv = _voice(voice, speaker, None)
        await c.write_event(SynthesizeStart(voice=sv).event())
        for chunk in chunks:
            await c.write_event(SynthesizeChunk(text=chunk).event())
            if delay:
                await asyncio.sleep(delay)
        await c.write_event(Synthesize(text="".join(chunks), voice=sv).event())
        await c.write_event(SynthesizeStop().event())
        # Read past an error: the stream must still end with synthesize-stopped.
        return await read_until(c, reply, SynthesizeStopped().event().type, stop_on_error=False)

    if client is not None:
        return await run(client)
    async with AsyncClient.from_uri(uri) as c:
        return await run(c)
