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
    # The owner speaks first, whatever its place in the chain (the others stand in only
    # while it fails): a client that names a voice to hear it (the HTTP API, the page).
    pinned: bool = False


@dataclass
class SentenceOutcome:
    """Which backends spoke (or failed) one sentence: for logs and metrics."""

    spoken_by: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    voices: dict[str, str] = field(default_factory=dict)  # backend -> the voice it used
    hedged: list[str] = field(default_factory=list)  # backends started by the deadline


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
        self.last_error = ""  # why it last failed: for status pages

    @property
    def is_open(self) -> bool:
        return self._clock() < self.open_until or self.probing

    def cooling_for(self) -> float:
        """Seconds until the backend is probed again (0 when it is not cooling down)."""
        return max(self.open_until - self._clock(), 0.0)

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
        self.last_error = str(error)
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

    def native_rate(self) -> int | None:
        """The sample rate of the first backend that knows its own, skipping any that
        failed to start: what `--output-rate auto` sends (one still loading counts)."""
        for backend in self._all:
            if backend.name not in self.down and (rate := backend.native_rate()) is not None:
                return rate
        return None

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

    def typical_loudness(self, name: str) -> float | None:
        """The named backend's usual level in LUFS, if it declares one."""
        return next((b.typical_loudness for b in self._all if b.name == name), None)

    def first_usable(self, choice: VoiceChoice | None = None) -> str | None:
        order = self._order(choice)
        return order[0].name if order else None

    def _order(self, choice: VoiceChoice | None = None) -> list[Backend]:
        """Usable backends first (a pinned voice's owner before them while it is usable);
        if all are cooling down, try them anyway: better late audio than silence."""
        ready = [b for b in self.live if self.usable(b)]
        if choice is not None and choice.pinned:
            ready.sort(key=lambda b: b.name != choice.owner)  # stable: the rest keep order
        return ready or list(self.live)

    async def speak(
        self,
        sentence: str,
        choice: VoiceChoice,
        utterance: Utterance,
        outcome: SentenceOutcome | None = None,
        deadline: float | None = None,
    ) -> AsyncGenerator[tuple[str, Pcm], None]:
        """Yield (backend name, PCM) for one sentence, failing over as needed.

        `deadline` (event-loop time) is when the listener needs audio: if the backend that
        owns the sentence has produced none by then, the next backend starts the same
        sentence alongside it (a hedge), and whichever produces audio first speaks it; the
        other is cancelled at once and is not counted as failing."""
        outcome = outcome if outcome is not None else SentenceOutcome()
        loop = asyncio.get_running_loop()
        remaining = sentence
        errors: list[str] = []
        queue: list[tuple[Backend, Voice, str | None]] = []
        for backend in self._order(choice):
            mapped = self.voice_for(backend, choice)
            if mapped is not None:
                queue.append((backend, *mapped))
        language = choice.language or ""
        while queue:
            racers = [self._begin(*queue.pop(0), remaining, language, utterance, outcome)]
            winner: _Attempt | None = None
            first: Pcm | None = None
            try:
                while winner is None and racers:
                    if len(racers) == 1 and (deadline is None or not queue):
                        # Nothing can start beside it: read it directly, no task per step.
                        only = racers[0]
                        steps = [(only, await only.read())]
                    else:
                        timeout = None
                        if deadline is not None and len(racers) == 1:
                            timeout = max(0.0, deadline - loop.time())
                        done, _ = await asyncio.wait({r.racing() for r in racers},
                                                     timeout=timeout,
                                                     return_when=asyncio.FIRST_COMPLETED)
                        if not done:  # no audio by the deadline: start the next one too
                            utterance.cancel.raise_if_cancelled()
                            hedge = queue.pop(0)
                            _LOGGER.info("%s has no audio by the deadline: %s starts the "
                                         "same sentence alongside", racers[0].backend.name,
                                         hedge[0].name)
                            outcome.hedged.append(hedge[0].name)
                            racers.append(self._begin(*hedge, remaining, language, utterance,
                                                      outcome))
                            deadline = None  # one hedge per sentence
                            continue
                        steps = [(r, r.taken()) for r in racers if r.step in done]
                    utterance.cancel.raise_if_cancelled()
                    for racer, (chunk, error) in steps:
                        if isinstance(error, StopAsyncIteration):  # done without audio
                            winner = racer
                            break
                        if error is not None:
                            racers.remove(racer)
                            self._failed(racer, error, utterance, outcome, errors)
                            continue
                        if isinstance(chunk, Pcm) and chunk.audio:
                            winner, first = racer, chunk
                            break
                        if isinstance(chunk, WordMark):
                            racer.marks.append(chunk)
            finally:
                for racer in racers:
                    if racer is not winner:
                        await racer.abandon()  # a hedge that lost: no verdict either way
            if winner is None:
                continue
            if first is None:  # the backend had nothing to say for this text
                await winner.abandon(success=True)
                return
            failure: Exception | None = None
            finished = False
            try:
                outcome.spoken_by.append(winner.backend.name)
                winner.sent += first.seconds
                yield winner.backend.name, first
                # The race is over: read the rest directly, no task per chunk.
                async for chunk in winner.stream:
                    utterance.cancel.raise_if_cancelled()
                    if isinstance(chunk, WordMark):
                        winner.marks.append(chunk)
                    elif chunk.audio:
                        winner.sent += chunk.seconds
                        yield winner.backend.name, chunk
                finished = True
            except Exception as exc:
                failure = exc
            finally:  # closed, cancelled, failed or done: its stream ends here, now
                await winner.abandon(success=finished)
            if finished:
                return
            assert failure is not None
            self._failed(winner, failure, utterance, outcome, errors)
            # Word marks index the text this backend was given (normalised or not).
            rest = _rest_after(winner.text, winner.marks, winner.sent)
            if rest == winner.text.strip():
                _LOGGER.info("%s reported no words: the next backend repeats the whole "
                             "sentence after %.1f s of it", winner.backend.name, winner.sent)
            elif not rest:
                return
            else:
                remaining = rest
        if not errors:
            raise AllBackendsFailed("no backend is available to speak")
        raise AllBackendsFailed("every backend failed: " + "; ".join(errors))

    def _begin(self, backend: Backend, voice: Voice, speaker: str | None, text: str,
               language: str, utterance: Utterance, outcome: SentenceOutcome) -> _Attempt:
        outcome.voices[backend.name] = voice.name
        breaker = self.breakers[backend.name]
        breaker.attempt()
        given = _text_for(backend, text, voice.language or language)
        stream = backend.synthesize(given, voice, speaker, utterance)
        return _Attempt(backend, breaker, given,
                        _with_timeouts(stream, self.sentence_timeout, backend.name))

    def _failed(self, attempt: _Attempt, exc: BaseException, utterance: Utterance,
                outcome: SentenceOutcome, errors: list[str]) -> None:
        """Count one backend's failure on a sentence (or pass a cancellation on)."""
        if isinstance(exc, SynthesisCancelled) or utterance.cancel.cancelled:
            raise SynthesisCancelled("synthesis cancelled") from exc
        name = attempt.backend.name
        error = exc if isinstance(exc, BackendError) else BackendError(
            f"{type(exc).__name__}: {exc}", backend=name)
        if not isinstance(exc, BackendError):
            _LOGGER.error("%s crashed on a sentence", name, exc_info=exc)
        # Busy (saturated) and one missing voice say nothing about the backend's health:
        # hand the sentence on without tripping its breaker.
        if not isinstance(error, BackendBusy | VoiceNotFound):
            attempt.breaker.failure(error)
        outcome.failures.append((name, str(error)))
        errors.append(f"{name}: {error}")
        _LOGGER.debug("%s failed after %.2f s of audio: %s", name, attempt.sent, error)


class _Attempt:
    """One backend speaking one sentence (or its rest): its stream, read one step ahead
    by a task while two attempts race for the first audio, else read directly."""

    def __init__(self, backend: Backend, breaker: Breaker, text: str,
                 stream: AsyncGenerator[Chunk, None]) -> None:
        self.backend = backend
        self.breaker = breaker
        self.text = text  # as handed to the backend (normalised if it asked)
        self.stream = stream
        self.sent = 0.0  # seconds of audio passed on
        self.marks: list[WordMark] = []
        self.step: asyncio.Task[Chunk] | None = None  # the read in flight while racing

    def racing(self) -> asyncio.Task[Chunk]:
        """The next chunk's read as a task, to race it against another attempt's."""
        if self.step is None:
            self.step = asyncio.ensure_future(self.stream.__anext__())
        return self.step

    def taken(self) -> tuple[Chunk | None, BaseException | None]:
        """The finished racing read's chunk, or what it raised (a cancelled read raises)."""
        step, self.step = self.step, None
        assert step is not None and step.done()
        error = step.exception()
        return (None, error) if error is not None else (step.result(), None)

    async def read(self) -> tuple[Chunk | None, BaseException | None]:
        """The next chunk (the racing read's, if one is in flight), or what it raised;
        a cancellation of the reader passes through."""
        try:
            if self.step is not None:
                step, self.step = self.step, None
                return await step, None
            return await self.stream.__anext__(), None
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # StopAsyncIteration included: the caller sorts them
            return None, exc

    async def abandon(self, success: bool = False) -> None:
        """Stop it now: its backend's stream is closed before this returns."""
        step, self.step = self.step, None
        if step is not None:
            if not step.done():  # (a finished step needs no turn of the loop)
                step.cancel()
                await asyncio.wait({step})
            if not step.cancelled():
                step.exception()  # retrieved: a lost hedge's error is not news
        await self.stream.aclose()
        if success:
            self.breaker.success()
        self.breaker.release()


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
