"""The one interface every speech backend implements, its voice type and typed errors."""

from __future__ import annotations

import abc
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ..pcm import Pcm


@dataclass(frozen=True)
class WordMark:
    """The words of the sentence up to `text_end` (a character offset) have been
    spoken once `audio_end` seconds of this sentence's audio have been played.

    Backends that know word timings (Edge) yield these so the chain can resume a
    sentence from the last word that was fully sent when a backend dies mid-way."""

    text_end: int
    audio_end: float


Chunk = Pcm | WordMark


@dataclass(frozen=True)
class Voice:
    """A voice as listed in `info`. `installed` means speakable without the user acting
    (not a gated model, not a voice missing with downloads off). It does not follow the
    backend's health: while the backend is down the chain speaks it with a stand-in, and
    Home Assistant must not lose the voice's language meanwhile."""

    name: str
    languages: tuple[str, ...]
    description: str = ""
    speakers: tuple[str, ...] = ()
    installed: bool = True

    @property
    def language(self) -> str:
        return self.languages[0] if self.languages else ""


class CancelToken:
    """Cancellation visible from the event loop and from worker threads alike."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise SynthesisCancelled("synthesis cancelled")


@dataclass
class Utterance:
    """One reply being spoken, shared by all of its sentences.

    `state` is per-backend scratch space that lives for the whole reply (CSM keeps the
    previous sentences' audio there so the voice stays the same across sentences)."""

    request_id: str
    cancel: CancelToken = field(default_factory=CancelToken)
    state: dict[str, Any] = field(default_factory=dict)


# --- errors ------------------------------------------------------------------


class BackendError(Exception):
    """A backend could not speak. `code` goes into the Wyoming `error` event;
    `transient` tells the chain whether trying this backend again later makes sense."""

    code = "backend-error"
    transient = True

    def __init__(self, message: str, *, backend: str = "") -> None:
        super().__init__(message)
        self.backend = backend


class BackendUnavailable(BackendError):
    """Not usable now (not loaded, no network, circuit open, queue full)."""

    code = "backend-unavailable"


class BackendBusy(BackendUnavailable):
    """Healthy but saturated (e.g. the GPU queue is full): send this sentence elsewhere,
    without counting it as a failure."""

    code = "backend-busy"


class BackendTimeout(BackendError):
    code = "backend-timeout"


class VoiceNotFound(BackendError):
    code = "voice-not-found"
    transient = False


class SynthesisCancelled(BackendError):
    """The client went away or the request was cancelled: not a failure."""

    code = "cancelled"
    transient = False


# --- the interface -------------------------------------------------------------


class Backend(abc.ABC):
    """A speech backend. One instance serves every connection.

    `synthesize` is called once per sentence and yields PCM (any rate/width/channels:
    `audio.py` converts it to the stream's format) as soon as it exists, optionally
    interleaved with `WordMark`s. It must honour `utterance.cancel` promptly and raise
    a `BackendError` (never anything else) when it cannot speak."""

    name: str = "backend"
    # LUFS of its speech as measured here on household sentences (tools/benchmarks/
    # loudness.py): the level a voice is assumed to have until its first sentence is heard.
    typical_loudness: float | None = None
    # True: give me normalised text (numbers, units, dates, symbols in words, by the
    # voice's language; see text/normalize.py). The chain normalises what it hands over.
    normalizes_text: bool = False

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Load, warm up, probe. Raise BackendUnavailable with the reason if unusable."""

    @abc.abstractmethod
    def voices(self) -> list[Voice]:
        """Every voice this backend knows, with an honest `installed` flag."""

    def available(self) -> bool:
        """Worth sending a sentence to right now (a network backend that knows its
        service is unreachable says no). Health only: it never changes `installed`."""
        return True

    def native_rate(self) -> int | None:
        """The sample rate its default voice speaks at, known before it has spoken (None:
        unknown until then). `--output-rate auto` sends the first backend's unresampled."""
        return None

    @property
    def default_voice(self) -> Voice | None:
        installed = [v for v in self.voices() if v.installed]
        return installed[0] if installed else None

    def find_voice(
        self, name: str | None = None, language: str | None = None
    ) -> Voice | None:
        """The voice called `name`, else the first installed voice for `language`."""
        voices = self.voices()
        if name:
            for voice in voices:
                if voice.name == name:
                    return voice
            lowered = name.lower()
            for voice in voices:
                if voice.name.lower() == lowered:
                    return voice
            return None
        if language:
            return find_voice_for_language(voices, language)
        return self.default_voice

    @abc.abstractmethod
    def synthesize(
        self, text: str, voice: Voice, speaker: str | None, utterance: Utterance
    ) -> AsyncIterator[Chunk]:
        """Speak one sentence."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""


def language_matches(voice_language: str, wanted: str) -> int:
    """2 for the same locale (en-US == en_us), 1 for the same language, 0 otherwise."""
    a = voice_language.replace("_", "-").lower()
    b = wanted.replace("_", "-").lower()
    if a == b:
        return 2
    return 1 if a.split("-")[0] == b.split("-")[0] else 0


def find_voice_for_language(voices: list[Voice], language: str) -> Voice | None:
    best: tuple[int, Voice] | None = None
    for voice in voices:
        if not voice.installed:
            continue
        score = max((language_matches(lang, language) for lang in voice.languages), default=0)
        if score and (best is None or score > best[0]):
            best = (score, voice)
    return best[1] if best else None
