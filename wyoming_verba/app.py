"""The state every connection shares: settings, the backend chain, the output format,
request ids, metrics, the cache and the pronunciation lexicon. No listener code: the
server and every handler use one App, and this module imports nothing above it."""

from __future__ import annotations

import itertools

from wyoming.info import Attribution, Info, TtsProgram, TtsVoice, TtsVoiceSpeaker

from . import __version__
from .audio import AudioFormat
from .backends.chain import BackendChain
from .backends.factory import attribution
from .cache import AudioCache
from .languages import bcp47
from .metrics import Metrics
from .settings import Settings
from .text.lexicon import Lexicon

PROJECT_URL = "https://github.com/wyoming-verba/wyoming-verba"


class App:
    """What every connection shares: settings, the backend chain, cache, metrics and the
    lexicon."""

    def __init__(self, settings: Settings, chain: BackendChain, metrics: Metrics) -> None:
        self.settings = settings
        self.chain = chain
        self.metrics = metrics
        self.output_format = AudioFormat(rate=settings.output_rate)
        max_bytes = int(settings.cache_mb * 1024 * 1024)
        self.cache = AudioCache(max_bytes, chain) if max_bytes > 0 else None
        self.lexicon = Lexicon(settings.lexicon)  # empty without --lexicon
        self._ids = itertools.count(1)

    def next_request_id(self) -> str:
        return f"r{next(self._ids)}"

    def record_backends(self) -> None:
        """Refresh the backend-up gauge (on every describe and after every reply)."""
        self.metrics.backends({b.name: self.chain.usable(b) for b in self.chain.live})

    def info(self) -> Info:
        voices = []
        for backend, voice in self.chain.voices():
            languages = advertised_languages(voice.languages)
            if not languages:
                continue  # Home Assistant could not offer it under any language
            who, url = attribution(backend.name)
            voices.append(
                TtsVoice(
                    name=voice.name,
                    description=f"{voice.description or voice.name} ({backend.name})",
                    attribution=Attribution(name=who, url=url),
                    installed=voice.installed,
                    version=None,
                    languages=languages,
                    speakers=[TtsVoiceSpeaker(s) for s in voice.speakers] or None,
                )
            )
        self.record_backends()
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
