"""The failover chain: the only place that knows about several backends at once.

Each sentence goes to the first usable backend. If it fails before any audio was sent,
the next backend speaks the sentence; if it fails part-way, the next backend speaks the
rest, from the last word the failed backend reported as fully sent (`WordMark`), else the
whole sentence again, so no word is ever lost. A backend that keeps failing is skipped for
a cool-down period (circuit breaker) and probed again afterwards."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field

from ..pcm import Pcm
from ..text.normalize import normalize
from .base import (
    Backend,
    BackendBusy,
    BackendError,
    BackendTimeout,
    Chunk,
    SynthesisCancelled,
    Utterance,
    Voice,
    VoiceNotFound,
    WordMark,
)

_LOGGER = logging.getLogger(__name__)

FAILURES_TO_TRIP = 2  # consecutive failures before a backend is skipped for `cooldown`


class AllBackendsFailed(BackendError):
    code = "synthesis-failed"


@dataclass
class VoiceChoice:
    """What a request asked for, resolved once; mapped onto each backend per sentence."""

    name: str | None = None
    speaker: str | None = None
    language: str | None = None
    owner: str | None = None  # the backend that has a voice called `name`


@dataclass
class SentenceOutcome:
    """Which backends spoke (or failed) one sentence: for logs and metrics."""

    spoken_by: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)


class Breaker:
    """Per-backend circuit breaker: closed → open (skipped) for `cooldown` → half-open,
    where one sentence probes the backend while the others still skip it."""

    def __init__(self, name: str, cooldown: float, clock: Callable[[], float]) -> None:
        self.name = name
        self.cooldown = cooldown
        self._clock = clock
        self.failures = 0
        self.open_until = 0.0
        self.probing = False

    @property
    def is_open(self) -> bool:
        return self._clock() < self.open_until or self.probing

    def attempt(self) -> None:
        """A sentence is about to try the backend: after a cool-down, it is the probe."""
        if self.open_until:
            self.probing = True

    def release(self) -> None:
        """The attempt ended without a verdict (the client went away)."""
        self.probing = False

    def success(self) -> None:
        if self.open_until:
            _LOGGER.info("%s is speaking again", self.name)
        self.failures = 0
        self.open_until = 0.0
        self.probing = False

    def failure(self, error: BackendError) -> None:
        self.probing = False
        self.failures += 1
        if self.failures >= FAILURES_TO_TRIP or not error.transient:
            was_open = self.open_until > 0
            self.open_until = self._clock() + self.cooldown
            if not was_open:  # say it once, not on every request
                _LOGGER.warning(
                    "%s failed %d time(s) (%s); skipping it for %.0f s",
                    self.name, self.failures, error, self.cooldown,
                )


class BackendChain:
    def __init__(
        self,
        backends: list[Backend],
        *,
        sentence_timeout: float = 10.0,
        cooldown: float = 30.0,
        voice_map: tuple[tuple[str, str], ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._all = backends
        self.stand_ins: dict[str, list[str]] = {}
        for voice, stand_in in voice_map:
            self.stand_ins.setdefault(voice, []).append(stand_in)
        self.live: list[Backend] = []
        self._starting: set[asyncio.Task] = set()
        self._started = False
        self.down: dict[str, str] = {}  # backend name -> why it is not usable
        self.sentence_timeout = sentence_timeout
        self.breakers = {b.name: Breaker(b.name, cooldown, clock) for b in backends}

    # --- lifecycle ---------------------------------------------------------------

    async def start(self, grace: float | None = None) -> None:
        """Start every backend concurrently. Without `grace`, wait for all of them. With it,
        return once `grace` seconds have passed and one backend is live: slow ones (CSM
        loading its weights) join the chain, in their configured place, when ready."""
        loop = asyncio.get_running_loop()
        self._starting = {asyncio.create_task(self._start_one(b)) for b in self._all}
        pending = set(self._starting)
        deadline = None if grace is None else loop.time() + grace
        while pending:
            timeout = None  # until something is live, wait whatever the grace
            if deadline is not None and self.live:
                timeout = max(deadline - loop.time(), 0.0)
            done, pending = await asyncio.wait(
                pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                break
        if self.live:
            live = {id(b) for b in self.live}
            still = [b.name for b in self._all if id(b) not in live and b.name not in self.down]
            _LOGGER.info("speaking with: %s%s", " → ".join(b.name for b in self.live),
                         f" (still starting: {', '.join(still)})" if still else "")
        else:
            _LOGGER.error("no backend could start: every request will get an error")
        self._started = True

    async def _start_one(self, backend: Backend) -> None:
        try:
            await backend.start()
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            if not isinstance(exc, BackendError):
                _LOGGER.error("%s failed to start", backend.name, exc_info=exc)
            self.down[backend.name] = reason
            _LOGGER.warning("backend %s is not available: %s", backend.name, reason)
            return
        ready = {id(b) for b in self.live} | {id(backend)}
        self.live = [b for b in self._all if id(b) in ready]  # keep the configured order
        if self._started:  # a late joiner: say so
            _LOGGER.info("%s is ready: speaking with %s", backend.name,
                         " → ".join(b.name for b in self.live))

    async def stop(self) -> None:
        for task in self._starting:
            task.cancel()
        await asyncio.gather(*self._starting, return_exceptions=True)
        await asyncio.gather(*(b.stop() for b in self.live), return_exceptions=True)

    # --- voices --------------------------------------------------------------------

    def usable(self, backend: Backend) -> bool:
        return (backend in self.live and not self.breakers[backend.name].is_open
                and backend.available())

    def voices(self) -> list[tuple[Backend, Voice]]:
        """Every live backend's voices, as the backends list them: a backend cooling down
        keeps its voices (the chain stands in for them), so the list does not flap."""
        listed: list[tuple[Backend, Voice]] = []
        seen: set[str] = set()
        for backend in self.live:
            for voice in backend.voices():
                if voice.name not in seen:
                    seen.add(voice.name)
                    listed.append((backend, voice))
        return listed

    def resolve(
        self, name: str | None, speaker: str | None = None, language: str | None = None
    ) -> VoiceChoice:
        """Check a request's voice once, before any audio. Raises VoiceNotFound."""
        if name:
            for backend in self.live:
                voice = backend.find_voice(name)
                if voice is not None:
                    if speaker and voice.speakers and speaker not in voice.speakers:
                        raise VoiceNotFound(
                            f"voice {voice.name!r} has no speaker {speaker!r}; "
                            f"speakers: {', '.join(voice.speakers)}"
                        )
                    return VoiceChoice(voice.name, speaker, voice.language, backend.name)
            raise VoiceNotFound(f"unknown voice {name!r}; send describe for the list")
        if language:
            if not any(backend.find_voice(language=language) for backend in self.live):
                raise VoiceNotFound(f"no voice for language {language!r}")
            return VoiceChoice(language=language, speaker=speaker)
        return VoiceChoice(speaker=speaker)

    def voice_for(self, backend: Backend, choice: VoiceChoice) -> tuple[Voice, str | None] | None:
        """The voice (and speaker) `backend` should use for `choice`."""
        if choice.owner == backend.name and choice.name:
            voice = backend.find_voice(choice.name)
            if voice is not None:
                return voice, choice.speaker
        for name in self.stand_ins.get(choice.name or "", ()):  # configured with --voice-map
            voice = backend.find_voice(name)
            if voice is not None and voice.installed:
                return voice, None
        if choice.language:  # a named voice on another backend maps to the same language
            voice = backend.find_voice(language=choice.language)
            if voice is not None:
                return voice, None
        voice = backend.default_voice
        return (voice, None) if voice is not None else None

    # --- speaking --------------------------------------------------------------

    def first_usable(self) -> str | None:
        order = self._order()
        return order[0].name if order else None

    def _order(self) -> list[Backend]:
        """Usable backends first; if all are cooling down, try them anyway: better late
        audio than silence."""
        ready = [b for b in self.live if self.usable(b)]
        return ready or list(self.live)

    async def speak(
        self,
        sentence: str,
        choice: VoiceChoice,
        utterance: Utterance,
        outcome: SentenceOutcome | None = None,
    ) -> AsyncGenerator[tuple[str, Pcm], None]:
        """Yield (backend name, PCM) for one sentence, failing over as needed."""
        outcome = outcome if outcome is not None else SentenceOutcome()
        remaining = sentence
        errors: list[str] = []
        for backend in self._order():
            mapped = self.voice_for(backend, choice)
            if mapped is None:
                continue
            voice, speaker = mapped
            given = _text_for(backend, remaining, voice.language or choice.language or "")
            sent = 0.0
            marks: list[WordMark] = []
            breaker = self.breakers[backend.name]
            breaker.attempt()
            try:
                stream = backend.synthesize(given, voice, speaker, utterance)
                timed = _with_timeouts(stream, self.sentence_timeout, backend.name)
                async with aclosing(timed) as chunks:  # the backend's stream ends here, now
                    async for chunk in chunks:
                        utterance.cancel.raise_if_cancelled()
                        if isinstance(chunk, WordMark):
                            marks.append(chunk)
                            continue
                        if not chunk.audio:
                            continue
                        if not sent:
                            outcome.spoken_by.append(backend.name)
                        sent += chunk.seconds
                        yield backend.name, chunk
            except SynthesisCancelled:
                raise
            except Exception as exc:  # a backend bug must not take the reply down
                if utterance.cancel.cancelled:
                    raise SynthesisCancelled("synthesis cancelled") from exc
                error = exc if isinstance(exc, BackendError) else BackendError(
                    f"{type(exc).__name__}: {exc}", backend=backend.name)
                if not isinstance(exc, BackendError):
                    _LOGGER.exception("%s crashed on a sentence", backend.name)
                # Busy (saturated) and one missing voice say nothing about the backend's
                # health: hand the sentence on without tripping its breaker.
                if not isinstance(error, BackendBusy | VoiceNotFound):
                    breaker.failure(error)
                outcome.failures.append((backend.name, str(error)))
                errors.append(f"{backend.name}: {error}")
                _LOGGER.debug("%s failed on %r after %.2f s of audio: %s",
                              backend.name, given, sent, error)
                if sent:
                    # Word marks index the text this backend was given (normalised or not).
                    rest = _rest_after(given, marks, sent)
                    if rest == given.strip():
                        _LOGGER.info("%s reported no words: the next backend repeats the "
                                     "whole sentence after %.1f s of it", backend.name, sent)
                    else:
                        remaining = rest
                    if not rest:
                        return
                continue
            finally:
                breaker.release()  # a cancelled or handed-on probe ends without a verdict
            breaker.success()
            return
        if not errors:
            raise AllBackendsFailed("no backend is available to speak")
        raise AllBackendsFailed("every backend failed: " + "; ".join(errors))


def _text_for(backend: Backend, text: str, language: str) -> str:
    """What `backend` is handed: normalised text in the voice's language if it asks for
    it (`Backend.normalizes_text`), else the text as it is."""
    if not backend.normalizes_text:
        return text
    try:
        return normalize(text, language)
    except Exception:  # a normalisation bug must not silence the sentence
        _LOGGER.exception("could not normalise %r; speaking it as written", text)
        return text


def _rest_after(text: str, marks: list[WordMark], sent_seconds: float) -> str:
    """What is left of `text` after the words whose audio was completely sent."""
    done = max((m.text_end for m in marks if m.audio_end <= sent_seconds), default=0)
    return text[done:].strip()


async def _with_timeouts(
    stream: AsyncIterator[Chunk], limit: float, name: str
) -> AsyncGenerator[Chunk, None]:
    """Bound the wait for the first and every later chunk; close the backend's stream
    whatever happens so it can release its resources."""
    iterator = stream.__aiter__()
    try:
        while True:
            try:
                async with asyncio.timeout(limit):
                    chunk = await iterator.__anext__()
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise BackendTimeout(f"no audio for {limit:.1f} s", backend=name) from None
            yield chunk
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
