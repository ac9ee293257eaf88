"""Speaking one reply: its text arrives in pieces, sentences are split off as they
complete, each goes through the cache or the backend chain, and the audio goes out in
the stream's format between one audio-start and one audio-stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Protocol

from wyoming.audio import AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.tts import SynthesizeStopped

from .app import App
from .audio import AudioFormat, SentenceShaper, silence
from .backends.base import BackendError, SynthesisCancelled, Utterance
from .backends.chain import SentenceOutcome, VoiceChoice
from .metrics import RequestStats
from .text import SentenceSplitter

_LOGGER = logging.getLogger(__name__)


class Outbox(Protocol):
    """Where a reply's events go: the client's connection."""

    def send(self, event: Event) -> None:
        """Hand the event to the client without waiting; ConnectionError once it is gone."""

    def send_audio(self, audio: bytes) -> None:
        """`send` for the stream's PCM: as audio-chunks of the stream's format."""

    async def writable(self) -> None:
        """Wait until the client has read what was sent; ConnectionError if it stopped."""


class Reply:
    """Speaks one reply: sentences are queued as they become known, spoken in order,
    and framed by one audio-start/audio-stop (HA builds one WAV from the first start)."""

    def __init__(
        self,
        app: App,
        out: Outbox,
        choice: VoiceChoice | None,
        *,
        streaming: bool,
        ssml: bool,
        previous: asyncio.Task | None,
        fmt: AudioFormat | None = None,
    ) -> None:
        self.app = app
        self.fmt = fmt or app.output_format  # of every audio byte it sends
        self.out = out
        self.choice = choice
        self.streaming = streaming
        settings = app.settings
        # The lexicon's language: the voice's (or the one asked for), else --language.
        self.language = (choice.language if choice else None) or settings.language
        self.splitter = SentenceSplitter(settings.first_sentence_chars, ssml=ssml,
                                         max_sentence_chars=settings.max_sentence_chars)
        self.sentences: asyncio.Queue[str | None] = asyncio.Queue()
        request_id = self.app.next_request_id()
        self.utterance = Utterance(request_id)
        self.stats = RequestStats(request_id, streaming=streaming)
        self.chars = 0
        self.has_text = False
        loop = asyncio.get_running_loop()
        self._requested = loop.time()
        self._playback_start: float | None = None  # loop time of the first audio sent
        self._played = 0.0  # seconds of audio sent
        self.text_ended = False
        self.task = asyncio.create_task(self._run(previous), name=f"reply {request_id}")

    def feed(self, text: str) -> None:
        # JSON allows lone surrogates that no backend can encode; blaming the backend
        # for them would trip its breaker, so they become "?" here.
        text = text.encode("utf-8", "replace").decode("utf-8")
        self.chars += len(text)
        self.has_text = self.has_text or bool(text.strip())
        for sentence in self.splitter.feed(text):
            self.sentences.put_nowait(sentence)

    def end_text(self) -> None:
        """No more text will come: speak what is left and end the reply."""
        if self.text_ended:
            return
        self.text_ended = True
        if self.choice is not None:
            for sentence in self.splitter.flush():
                self.sentences.put_nowait(sentence)
        self.sentences.put_nowait(None)

    def cancel(self) -> None:
        self.utterance.cancel.cancel()
        self.task.cancel()

    async def _run(self, previous: asyncio.Task | None) -> None:
        if previous is not None:  # replies on one connection go out in order
            await asyncio.wait({previous})  # unlike gather, a cancel of ours stays ours
        out = self.out
        fmt = self.fmt
        start = AudioStart(fmt.rate, fmt.width, fmt.channels).event()
        settings = self.app.settings
        started = False
        spoke = False  # speech was sent: later sentences begin with --sentence-pause
        failed = False
        choice = self.choice
        try:
            while (sentence := await self.sentences.get()) is not None:
                if failed or choice is None:
                    continue
                sentence = self.app.lexicon.apply(sentence, self.language)
                self.stats.sentences += 1
                self.stats.chars += len(sentence)
                shaper = SentenceShaper(fmt, self.app.loudness, self.app.chain.typical_loudness)
                outcome = SentenceOutcome()
                gap = settings.sentence_pause if spoke else settings.lead_in_ms / 1000
                try:
                    async with aclosing(
                        self._sentence_audio(sentence, choice, shaper, outcome,
                                             self._deadline())
                    ) as audio_blocks:
                        async for audio in audio_blocks:
                            if not started:
                                out.send(start)
                                started = True
                            if gap:  # before the sentence's first audio, not before its text
                                self._send(silence(fmt, gap))
                                gap = 0.0
                            spoke = True
                            self._send(audio)
                except (SynthesisCancelled, ConnectionError):
                    raise
                except Exception as exc:  # whatever it was, the client must get an end
                    failed = True
                    self.stats.outcome = "error"
                    if isinstance(exc, BackendError):
                        _LOGGER.error("request %s: %s", self.utterance.request_id, exc)
                        code = exc.code
                    else:
                        _LOGGER.exception("request %s: internal error", self.utterance.request_id)
                        code = "internal-error"
                    out.send(Error(text=str(exc) or type(exc).__name__, code=code).event())
                finally:
                    self.stats.failovers += len(outcome.failures)
                    self.stats.hedges += len(outcome.hedged)
                    for name in outcome.spoken_by:
                        self.stats.spoken_by(name)
                    if outcome.spoken_by:
                        self.app.metrics.sentence(outcome.spoken_by[-1], outcome.failures)
                learn = [source for source in shaper.raw if self.app.loudness.wants(*source)]
                if learn:
                    await self.app.audio_pool.run(self._learn_loudness, shaper, learn)
                # Between sentences, with no backend held: wait for a slow reader here.
                await out.writable()
            if self.choice is not None and not started and not failed:
                # Text that cleans to nothing (an emoji): a valid, empty reply.
                out.send(start)
                started = True
            if started:
                out.send(AudioStop().event())
            if self.streaming:
                out.send(SynthesizeStopped().event())
        except (SynthesisCancelled, asyncio.CancelledError, ConnectionError):
            # The client went away (or shutdown's grace ended): normal, not an error; the
            # request's log line says outcome=cancelled.
            self.stats.outcome = "cancelled"
            self.utterance.cancel.cancel()
        finally:
            if self.choice is not None:
                self.app.metrics.record(self.stats)
                self.app.record_backends()

    def _send(self, audio: bytes) -> None:
        fmt = self.fmt
        if self._playback_start is None:
            self._playback_start = asyncio.get_running_loop().time()
        self.out.send_audio(audio)
        seconds = len(audio) / fmt.bytes_per_second
        self.stats.audio(seconds)
        self._played += seconds

    def _deadline(self) -> float | None:
        """When the client needs the next sentence's audio: --first-audio-deadline after
        the request for the first one, then the moment it would run out of what it has
        (had playback started with the first chunk), or a fresh window if it already has."""
        limit = self.app.settings.first_audio_deadline
        if not limit:
            return None
        if self._playback_start is None:
            return self._requested + limit
        now = asyncio.get_running_loop().time()
        runs_out = self._playback_start + self._played
        # Text that came late (an LLM still writing): the client already ran dry, so this
        # sentence gets a fresh window rather than an immediate second backend.
        return runs_out if runs_out > now else now + limit

    def _learn_loudness(self, shaper: SentenceShaper, sources: list[tuple[str, str]]) -> None:
        for source, samples in shaper.observations(sources):
            self.app.loudness.observe(*source, samples, self.fmt.rate)

    async def _sentence_audio(
        self, sentence: str, choice: VoiceChoice, shaper: SentenceShaper,
        outcome: SentenceOutcome, deadline: float | None,
    ) -> AsyncGenerator[bytes, None]:
        """The sentence's audio in the stream's format, from the cache or the chain."""
        cache = self.app.cache
        key = cache.key(sentence, choice, self.fmt) if cache is not None else None
        if cache is not None and key is not None:
            cached = cache.get(key)
            if cached is not None:
                self.stats.cache_hits += 1
                outcome.spoken_by.append("cache")
                yield cached
                return
        collected: list[bytes] = []
        pool = self.app.audio_pool
        async with aclosing(
            self.app.chain.speak(sentence, choice, self.utterance, outcome, deadline)
        ) as spoken:
            ended = False
            async for backend, pcm in spoken:
                source = (backend, outcome.voices.get(backend, ""))
                # A block its backend marks as the sentence's last is shaped and the
                # sentence ended in one trip to the pool (espeak, Piper: most sentences).
                step = shaper.finish if pcm.last else shaper.feed
                audio = await pool.run(step, pcm, source)
                ended = pcm.last
                if audio:
                    collected.append(audio)
                    yield audio
        if not ended:
            tail = await pool.run(shaper.end)
            if tail:
                collected.append(tail)
                yield tail
        # Only whole sentences from one backend with no failover are cached.
        whole = len(outcome.spoken_by) == 1 and not outcome.failures
        if cache is not None and key is not None and whole:
            cache.put(key, b"".join(collected))
