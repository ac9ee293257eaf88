"""espeak-ng: the offline voice that makes a fresh install always talk.

The library (shipped with its data by the `espeakng-loader` wheel) is loaded once per core
(up to `library.MAX_ENGINES`), each engine on its own thread (`library`); a sentence takes
a free engine, or waits for one. espeak-ng makes a second of 22,050 Hz int16 in about a
millisecond, so a sentence is handed to the event loop whole, marked as the last of its
sentence: one wake-up of the loop and one shaping step, where each block used to cost its own
(each is a turn for the GIL under load). A sentence that runs past PIECE_S goes out in
pieces of that length as they are made. Output is not bit-exact between calls (the wave
generator keeps phase and pitch-flutter state from the previous sentence); lengths differ by
a few samples. espeak-ng is GPL-3 (loaded dynamically, not bundled)."""

from __future__ import annotations

import asyncio
import contextlib
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
from ..threads import cpu_count, stream_from_thread
from .library import Engine, engine_count, espeak_executor, library_paths, load_engine
from .voices import VoiceEntry

_LOGGER = logging.getLogger(__name__)

PIECE_S = 4.0  # audio handed over at once at most: about 4 ms of espeak-ng's time


class EspeakBackend(Backend):
    name = "espeak"
    typical_loudness = -20.6  # LUFS, measured by tools/benchmarks/loudness.py
    normalizes_text = True  # its own rules miss units, money after the number, German ordinals

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engines: list[Engine] = []  # engine 0 lists the voices and sets the rate
        self._free: asyncio.Queue[int] = asyncio.Queue()  # indexes of idle engines
        self._entries: dict[str, VoiceEntry] = {}
        self._voices: list[Voice] = []
        self._default: Voice | None = None

    async def start(self) -> None:
        lib_path, data_path = library_paths()
        try:
            engine = await espeak_executor().run(load_engine, lib_path, data_path)
        except BackendError:
            raise
        except Exception as exc:  # anything else from ctypes is still "unusable"
            raise BackendUnavailable(
                f"espeak-ng failed to start: {exc}", backend=self.name
            ) from exc
        self._engines = [engine]
        for index in range(1, engine_count(cpu_count())):
            try:
                self._engines.append(await espeak_executor(index).run(
                    load_engine, lib_path, data_path, index))
            except Exception as exc:  # one engine still speaks, just one sentence at a time
                _LOGGER.warning("espeak-ng: engine %d did not load (%s); using %d",
                                index + 1, exc, index)
                break
        self._free = asyncio.Queue()
        for index in range(len(self._engines)):
            self._free.put_nowait(index)
        self._entries = {e.voice.name: e for e in engine.entries}
        self._voices = [e.voice for e in self._entries.values()]
        self._default = None
        if not self._entries:
            raise BackendUnavailable("espeak-ng lists no voices", backend=self.name)
        wanted = self.settings.espeak_voice
        if not wanted or super().find_voice(wanted) is None:
            _LOGGER.warning(
                "espeak voice %r not found; using %s", self.settings.espeak_voice,
                self.default_voice.name if self.default_voice else "none",
            )

    @property
    def _engine(self) -> Engine | None:
        return self._engines[0] if self._engines else None

    @property
    def sample_rate(self) -> int:
        return self._engine.rate if self._engine else 22050

    def native_rate(self) -> int:
        return self.sample_rate

    def voices(self) -> list[Voice]:
        return self._voices

    @property
    def default_voice(self) -> Voice | None:
        # Asked for on every sentence that names no voice: looked up once among 140.
        if self._default is None and self._voices:
            wanted = self.settings.espeak_voice
            self._default = (
                (super().find_voice(wanted) if wanted else None)
                or (super().find_voice(language=self.settings.language)
                    if self.settings.language else None)
                or super().default_voice
            )
        return self._default

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
        """Yields the sentence as 22,050 Hz mono int16, whole or in PIECE_S pieces, the
        last marked `last`. `speaker` is ignored. Raises SynthesisCancelled when
        `utterance.cancel` cut the sentence short."""
        if self._engine is None:
            raise BackendUnavailable("espeak-ng is not started", backend=self.name)
        entry = self._entries.get(voice.name)
        if entry is None:
            raise VoiceNotFound(f"espeak-ng has no voice {voice.name!r}", backend=self.name)
        cancel = utterance.cancel
        if cancel.cancelled:
            raise SynthesisCancelled("cancelled before espeak-ng started", backend=self.name)
        if not text.strip():
            return
        index = await self._free.get()  # every engine busy: wait for the first one free
        engine = self._engines[index]
        loop = asyncio.get_running_loop()
        released = False

        def release() -> None:  # once: when espeak-ng is done, or when we stop listening
            nonlocal released
            if not released:
                released = True
                self._free.put_nowait(index)

        rate = engine.rate
        piece_bytes = int(PIECE_S * rate) * 2

        def produce(emit: Callable[[Pcm], None], should_stop: Callable[[], bool]) -> None:
            # espeak's callback hands each block to `collect`, and aborts once `should_stop`.
            blocks: list[bytes] = []
            held = 0

            def collect(block: bytes) -> None:
                nonlocal held
                blocks.append(block)
                held += len(block)
                if held >= piece_bytes:  # a long sentence: pass on what there is
                    emit(Pcm(b"".join(blocks), rate))
                    blocks.clear()
                    held = 0

            try:
                engine.speak(text, entry.identifier, collect, should_stop)
                # Cut short, this is what was made (the stream then raises
                # SynthesisCancelled, and the chain passes no cancelled audio on).
                emit(Pcm(b"".join(blocks), rate, last=True))
            finally:
                # The engine is free as soon as its blocks are made, not once the reply
                # has shaped and sent them all.
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(release)

        try:
            # The engine's own single thread: a producer still winding down after a
            # cancel finishes before the engine's next sentence starts.
            stream = stream_from_thread(produce, cancel, espeak_executor(index))
            async with aclosing(stream) as pieces:
                async for piece in pieces:
                    if piece.audio:
                        yield piece
        except BackendError:  # SynthesisCancelled included: a cut-short sentence
            raise
        except Exception as exc:
            raise BackendError(f"espeak-ng failed: {exc}", backend=self.name) from exc
        finally:
            release()

    async def stop(self) -> None:
        # The library and its thread are process-wide (other instances may use them).
        self._engines = []
        self._entries = {}
        self._voices = []
        self._default = None

