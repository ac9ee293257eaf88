"""The state every connection shares: settings, the backend chain, the output format,
request ids, metrics, the cache and the pronunciation lexicon. No listener code: the
server and every handler use one App, and this module imports nothing above it."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from wyoming.event import Event
from wyoming.info import Attribution, Info, TtsProgram, TtsVoice, TtsVoiceSpeaker

from . import __version__
from .audio import AudioFormat, LoudnessTracker
from .backends.base import Voice
from .backends.chain import BackendChain
from .backends.factory import attribution
from .cache import AudioCache
from .languages import bcp47
from .metrics import Metrics
from .settings import Settings
from .text.lexicon import Lexicon
from .workers import Workers

PROJECT_URL = "https://github.com/wyoming-verba/wyoming-verba"
DEFAULT_RATE = 24000  # --output-rate auto when no backend knows its own
OPENAI_PCM_RATE = 24000


@dataclass(frozen=True)
class BackendState:
    """One backend as a status page shows it. `state`: up, cooling (skipped after
    failures until `retry_in` seconds have passed), down (failed to start, or its
    service is unreachable), or starting (still loading)."""

    name: str
    state: str
    reason: str = ""
    retry_in: float = 0.0
    voices: int = 0


class App:
    """What every connection shares: settings, the backend chain, cache, metrics and the
    lexicon."""

    def __init__(self, settings: Settings, chain: BackendChain, metrics: Metrics) -> None:
        self.settings = settings
        self.chain = chain
        self.metrics = metrics
        # Wyoming replies: the first backend's own rate unless --output-rate says otherwise,
        # so the usual reply is never resampled (wyoming-piper sends its voice's too).
        self.output_format = AudioFormat(
            rate=settings.output_rate or chain.native_rate() or DEFAULT_RATE)
        # The HTTP API: OpenAI's raw `pcm` is 24 kHz, and its clients assume so.
        self.http_format = AudioFormat(rate=settings.output_rate or OPENAI_PCM_RATE)
        self.loudness = LoudnessTracker(settings.loudness)
        max_bytes = int(settings.cache_mb * 1024 * 1024)
        self.cache = AudioCache(max_bytes, chain) if max_bytes > 0 else None
        self.lexicon = Lexicon(settings.lexicon)  # empty without --lexicon
        self._ids = itertools.count(1)
        self._info_cache: tuple[tuple[tuple[str, Voice], ...], bytes] | None = None
        # Converting, levelling and shaping audio runs here, not on the event loop, so
        # `describe` and every other connection stay responsive however busy replies are.
        self.audio_pool = Workers(2, "audio")

    def close(self) -> None:
        self.audio_pool.shutdown()
        self.metrics.close()

    def next_request_id(self) -> str:
        return f"r{next(self._ids)}"

    def record_backends(self) -> None:
        """Refresh the backend-up gauge (on every describe and after every reply)."""
        self.metrics.backends({b.name: self.chain.usable(b) for b in self.chain.live})

    def backend_states(self) -> list[BackendState]:
        """Every configured backend, in chain order, and whether it speaks now and why
        not. Read-only: nothing here changes what the chain does."""
        chain = self.chain
        live = {b.name: b for b in chain.live}
        states = []
        for name, breaker in chain.breakers.items():
            backend = live.get(name)
            if name in chain.down:
                states.append(BackendState(name, "down", chain.down[name]))
            elif backend is None:
                states.append(BackendState(name, "starting", "loading"))
            elif breaker.is_open:
                states.append(BackendState(name, "cooling", breaker.last_error,
                                           round(breaker.cooling_for(), 1),
                                           len(backend.voices())))
            elif not backend.available():
                states.append(BackendState(name, "down", "its service is unreachable; "
                                           "probed again in the background",
                                           voices=len(backend.voices())))
            else:
                states.append(BackendState(name, "up", voices=len(backend.voices())))
        return states
    def info_bytes(self, encode: Callable[[Event], bytes]) -> bytes:
        """The `info` event as `encode` writes it, re-encoded only when the voices changed:
        with a few hundred voices, encoding it costs more than answering the rest of
        `describe`."""
        listed = tuple((backend.name, voice) for backend, voice in self.chain.voices())
        if self._info_cache is None or self._info_cache[0] != listed:
            self._info_cache = (listed, encode(self._info(listed).event()))
        self.record_backends()
        return self._info_cache[1]

    def info(self) -> Info:
        return self._info(tuple((b.name, v) for b, v in self.chain.voices()))

    def _info(self, listed: tuple[tuple[str, Voice], ...]) -> Info:
        voices = []
        for backend_name, voice in listed:
            languages = advertised_languages(voice.languages)
            if not languages:
                continue  # Home Assistant could not offer it under any language
            who, url = attribution(backend_name)
            voices.append(
                TtsVoice(
                    name=voice.name,
                    description=f"{voice.description or voice.name} ({backend_name})",
                    attribution=Attribution(name=who, url=url),
                    installed=voice.installed,
                    version=None,
                    languages=languages,
                    speakers=[TtsVoiceSpeaker(s) for s in voice.speakers] or None,
                )
            )
        program = TtsProgram(
            name="wyoming-verba",
            description="Sesame CSM-1b, Edge, Piper and espeak-ng with per-sentence failover",
            attribution=Attribution(name="wyoming-verba", url=PROJECT_URL),
            installed=True,
            version=__version__,
            voices=voices,
            supports_synthesize_streaming=True,
        )
        return Info(tts=[program])


def advertised_languages(tags: tuple[str, ...]) -> list[str]:
    """A voice's languages as valid BCP-47 tags, one spelling each, in order."""
    out: list[str] = []
    for tag in tags:
        valid = bcp47(tag)
        if valid and valid not in out:
            out.append(valid)
    return out
