"""espeak-ng: the offline voice that makes a fresh install always talk.

The library (shipped with its data by the `espeakng-loader` wheel) runs on one thread
(`library`); each block of 22,050 Hz int16 it produces goes straight to the event loop,
so audio leaves before the sentence is finished. Output is not bit-exact between calls
(the wave generator keeps phase and pitch-flutter state from the previous sentence);
lengths differ by a few samples. espeak-ng is GPL-3 (loaded dynamically, not bundled)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing

from ...pcm import Pcm
from ...settings import Settings
from ..base import (
    Backend,
    BackendError,
    BackendUnavailable,
    Chunk,
    SynthesisCancelled,
    Utterance,
    Voice,
    VoiceNotFound,
)
from ..threads import stream_from_thread
from .library import Engine, espeak_executor, library_paths, load_engine
from .voices import VoiceEntry

_LOGGER = logging.getLogger(__name__)


class EspeakBackend(Backend):
    name = "espeak"
    typical_loudness = -20.6  # LUFS, measured by tools/benchmarks/loudness.py
    normalizes_text = True  # its own rules miss units, money after the number, German ordinals

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: Engine | None = None
        self._entries: dict[str, VoiceEntry] = {}

    async def start(self) -> None:
        lib_path, data_path = library_paths()
        loop = asyncio.get_running_loop()
        try:
            engine = await loop.run_in_executor(
                espeak_executor(), load_engine, lib_path, data_path
            )
        except BackendError:
            raise
        except Exception as exc:  # anything else from ctypes is still "unusable"
            raise BackendUnavailable(
                f"espeak-ng failed to start: {exc}", backend=self.name
            ) from exc
        self._engine = engine
        self._entries = {e.voice.name: e for e in engine.entries}
        if not self._entries:
            raise BackendUnavailable("espeak-ng lists no voices", backend=self.name)
        wanted = self.settings.espeak_voice
        if not wanted or super().find_voice(wanted) is None:
            _LOGGER.warning(
                "espeak voice %r not found; using %s", self.settings.espeak_voice,
                self.default_voice.name if self.default_voice else "none",
            )

    @property
    def sample_rate(self) -> int:
        return self._engine.rate if self._engine else 22050

    def voices(self) -> list[Voice]:
        return [e.voice for e in self._entries.values()]

    @property
    def default_voice(self) -> Voice | None:
        wanted = self.settings.espeak_voice
        return (
            (super().find_voice(wanted) if wanted else None)
            or (super().find_voice(language=self.settings.language)
                if self.settings.language else None)
            or super().default_voice
        )

    def find_voice(self, name: str | None = None, language: str | None = None) -> Voice | None:
        """Also accepts espeak's identifier ("gmw/en-US") or description."""
        voice = super().find_voice(name, language)
        if voice is None and name:
            lowered = name.lower()
            for entry in self._entries.values():
                if lowered in (entry.identifier.lower(), entry.voice.description.lower(),
                               entry.voice.description.lower().removeprefix("espeak-ng ")):
                    return entry.voice
        return voice

    async def synthesize(
        self, text: str, voice: Voice, speaker: str | None, utterance: Utterance
    ) -> AsyncIterator[Chunk]:
        """Yields 22,050 Hz mono int16 blocks as espeak-ng produces them. `speaker` is
        ignored. Raises SynthesisCancelled when `utterance.cancel` cut the sentence short."""
        engine = self._engine
        if engine is None:
            raise BackendUnavailable("espeak-ng is not started", backend=self.name)
        entry = self._entries.get(voice.name)
        if entry is None:
            raise VoiceNotFound(f"espeak-ng has no voice {voice.name!r}", backend=self.name)
        cancel = utterance.cancel
        if cancel.cancelled:
            raise SynthesisCancelled("cancelled before espeak-ng started", backend=self.name)
        if not text.strip():
            return

        def produce(emit: Callable[[bytes], None], should_stop: Callable[[], bool]) -> None:
            # espeak's callback hands each block to `emit` and aborts once `should_stop`.
            engine.speak(text, entry.identifier, emit, should_stop)

        try:
            stream = stream_from_thread(produce, cancel, espeak_executor(), merge=b"".join)
            async with aclosing(stream) as blocks:
                async for block in blocks:
                    yield Pcm(block, engine.rate)
        except BackendError:  # SynthesisCancelled included: a cut-short sentence
            raise
        except Exception as exc:
            raise BackendError(f"espeak-ng failed: {exc}", backend=self.name) from exc

    async def stop(self) -> None:
        # The library and its thread are process-wide (other instances may use them).
        self._engine = None
        self._entries = {}
