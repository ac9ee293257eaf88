"""A fault-injection backend for chain and handler tests.

It speaks a real tone (its own frequency, so the audio shows who spoke) for a duration
proportional to the text, reports word marks like Edge does, and can be told to be slow,
fail before audio, or die part-way through a sentence."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np

from wyoming_verba.backends.base import (
    Backend,
    BackendError,
    Chunk,
    Pcm,
    Utterance,
    Voice,
    WordMark,
)

SECONDS_PER_CHAR = 0.02


@dataclass
class Faults:
    first_delay: float = 0.0  # seconds before the first chunk
    chunk_delay: float = 0.0  # seconds between chunks
    fail_before_audio: int = 0  # this many next sentences fail before any audio
    fail_after_words: int | None = None  # die after this many words of the next sentence
    error: type[BackendError] = BackendError
    stall_after_words: int | None = None  # hang (until cancelled) after this many words


@dataclass
class ToneBackend(Backend):
    name: str = "tone"
    frequency: float = 440.0
    rate: int = 16000
    voices_: list[Voice] = field(
        default_factory=lambda: [Voice("tone-en", ("en-US",), "a test tone"),
                                 Voice("tone-de", ("de-DE",), "ein Testton")]
    )
    faults: Faults = field(default_factory=Faults)
    spoken: list[str] = field(default_factory=list)  # sentences (or rests) fully spoken
    attempts: list[str] = field(default_factory=list)
    cancelled: int = 0
    streams_ended: int = 0  # synthesize generators that have run their cleanup
    knows_rate: bool = False  # says its rate before speaking, as the real backends do

    def voices(self) -> list[Voice]:
        return list(self.voices_)

    def native_rate(self) -> int | None:
        return self.rate if self.knows_rate else None

    async def synthesize(
        self, text: str, voice: Voice, speaker: str | None, utterance: Utterance
    ) -> AsyncIterator[Chunk]:
        self.attempts.append(text)
        faults = self.faults
        try:
            if faults.first_delay:
                await asyncio.sleep(faults.first_delay)
            if faults.fail_before_audio:
                faults.fail_before_audio -= 1
                raise faults.error(f"{self.name}: injected failure", backend=self.name)
            t = 0.0
            for index, (start, end) in enumerate(_word_spans(text)):
                if faults.fail_after_words is not None and index == faults.fail_after_words:
                    faults.fail_after_words = None
                    raise faults.error(f"{self.name}: died mid-sentence", backend=self.name)
                if faults.stall_after_words is not None and index == faults.stall_after_words:
                    await asyncio.sleep(3600)
                if utterance.cancel.cancelled:
                    return
                seconds = (end - start + 1) * SECONDS_PER_CHAR
                yield Pcm(tone(self.frequency, seconds, self.rate, t), self.rate)
                t += seconds
                yield WordMark(text_end=end, audio_end=t)
                if faults.chunk_delay:
                    await asyncio.sleep(faults.chunk_delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.streams_ended += 1
        self.spoken.append(text)


def _word_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], None
    for i, ch in enumerate(text + " "):
        if ch.isspace():
            if start is not None:
                spans.append((start, i))
                start = None
        elif start is None:
            start = i
    return spans


def tone(frequency: float, seconds: float, rate: int, t0: float = 0.0) -> bytes:
    t = t0 + np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * frequency * t) * 0.3 * 32767).astype("<i2").tobytes()


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])
