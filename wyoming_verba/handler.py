"""One client connection: read events, answer describe/ping at once, and speak replies.

States per connection: IDLE, or STREAMING between `synthesize-start` and
`synthesize-stop` (REJECTED when that stream was refused: its chunks are swallowed and
its stop still answered). Each reply is spoken by its own task, in order, so reading
(and answering `describe`) goes on while audio is produced."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.info import Describe
from wyoming.ping import Ping, Pong
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeTextFormat,
    SynthesizeVoice,
)

from .audio import PcmConverter, split_chunks
from .backends.base import BackendError, SynthesisCancelled, Utterance
from .backends.chain import SentenceOutcome, VoiceChoice
from .metrics import RequestStats
from .text import SentenceSplitter
from .wire import ProtocolError, read_event

if TYPE_CHECKING:
    from .server import App

_LOGGER = logging.getLogger(__name__)


class State(enum.Enum):
    IDLE = "idle"
    STREAMING = "streaming"
    REJECTED = "rejected"


class Reply:
    """Speaks one reply: sentences are queued as they become known, spoken in order,
    and framed by one audio-start/audio-stop (HA builds one WAV from the first start)."""

    def __init__(
        self,
        handler: ConnectionHandler,
        choice: VoiceChoice | None,
        *,
        streaming: bool,
        ssml: bool,
        previous: asyncio.Task | None,
    ) -> None:
        self.handler = handler
        self.app = handler.app
        self.choice = choice
        self.streaming = streaming
        self.splitter = SentenceSplitter(self.app.settings.first_sentence_chars, ssml=ssml)
        self.sentences: asyncio.Queue[str | None] = asyncio.Queue()
        request_id = self.app.next_request_id()
        self.utterance = Utterance(request_id)
        self.stats = RequestStats(request_id, streaming=streaming)
        self.chars = 0
        self.has_text = False
        self.closed = False
        self.task = asyncio.create_task(self._run(previous), name=f"reply {request_id}")

    def feed(self, text: str) -> None:
        # JSON allows lone surrogates that no backend can encode; blaming the backend
        # for them would trip its breaker, so they become "?" here.
        text = text.encode("utf-8", "replace").decode("utf-8")
        self.chars += len(text)
        self.has_text = self.has_text or bool(text.strip())
        for sentence in self.splitter.feed(text):
            self.sentences.put_nowait(sentence)

    def close(self) -> None:
        """No more text: speak what is left and end the reply."""
        if self.closed:
            return
        self.closed = True
        if self.choice is not None:
            for sentence in self.splitter.flush():
                self.sentences.put_nowait(sentence)
        self.sentences.put_nowait(None)

    def cancel(self) -> None:
        self.utterance.cancel.cancel()
        self.task.cancel()

    async def _run(self, previous: asyncio.Task | None) -> None:
        if previous is not None:  # replies on one connection go out in order
            await asyncio.gather(previous, return_exceptions=True)
        write = self.handler.write
        fmt = self.app.output_format
        started = False
        failed = False
        try:
            while (sentence := await self.sentences.get()) is not None:
                if failed or self.choice is None:
                    continue
                self.stats.sentences += 1
                self.stats.chars += len(sentence)
                converter = PcmConverter(fmt)
                outcome = SentenceOutcome()
                try:
                    async for audio in self._sentence_audio(sentence, converter, outcome):
                        if not started:
                            await write(AudioStart(fmt.rate, fmt.width, fmt.channels).event())
                            started = True
                        await self._send(audio)
                except SynthesisCancelled:
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
                    await write(Error(text=str(exc) or type(exc).__name__, code=code).event())
                finally:
                    self.stats.failovers += len(outcome.failures)
                    for name in outcome.spoken_by:
                        self.stats.spoken_by(name)
                    if outcome.spoken_by:
                        self.app.metrics.sentence(outcome.spoken_by[-1], outcome.failures)
            if self.choice is not None and not started and not failed:
                # Text that cleans to nothing (an emoji): a valid, empty reply.
                await write(AudioStart(fmt.rate, fmt.width, fmt.channels).event())
                started = True
            if started:
                await write(AudioStop().event())
            if self.streaming:
                await write(SynthesizeStopped().event())
        except (SynthesisCancelled, asyncio.CancelledError, ConnectionError):
            self.stats.outcome = "cancelled"
            self.utterance.cancel.cancel()
        finally:
            if self.choice is not None:
                self.app.metrics.record(self.stats)
                self.app.record_backends()

    async def _send(self, audio: bytes) -> None:
        fmt = self.app.output_format
        for piece in split_chunks(audio, fmt, self.app.settings.samples_per_chunk):
            await self.handler.write(AudioChunk(fmt.rate, fmt.width, fmt.channels, piece).event())
            self.stats.audio(len(piece) / fmt.bytes_per_second)

    async def _sentence_audio(
        self, sentence: str, converter: PcmConverter, outcome: SentenceOutcome
    ) -> AsyncIterator[bytes]:
        """The sentence's audio in the stream's format, from the cache or the chain."""
        cache = self.app.cache
        key = (
            cache.key(sentence, self.choice, self.app.output_format) if cache is not None else None
        )
        if key is not None:
            cached = cache.get(key)
            if cached is not None:
                self.stats.cache_hits += 1
                outcome.spoken_by.append("cache")
                yield cached
                return
        collected: list[bytes] = []
        async for _backend, pcm in self.app.chain.speak(
            sentence, self.choice, self.utterance, outcome
        ):
            audio = converter.convert(pcm)
            if audio:
                collected.append(audio)
                yield audio
        tail = converter.flush()
        if tail:
            collected.append(tail)
            yield tail
        # Only whole sentences from one backend with no failover are cached.
        if key is not None and len(outcome.spoken_by) == 1 and not outcome.failures:
            cache.put(key, b"".join(collected))


class ConnectionHandler:
    def __init__(
        self,
        app: App,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        name: str,
        *,
        finish_on_eof: bool = False,
    ) -> None:
        self.app = app
        self.finish_on_eof = finish_on_eof
        self.reader = reader
        self.writer = writer
        self.name = name
        self.state = State.IDLE
        self.stream: Reply | None = None
        self.stream_fallback_text: str | None = None
        self.replies: set[Reply] = set()
        self.last_task: asyncio.Task | None = None

    async def write(self, event: Event) -> None:
        await async_write_event(event, self.writer)

    async def error(self, text: str, code: str) -> None:
        _LOGGER.warning("%s: %s (%s)", self.name, text, code)
        await self.write(Error(text=text, code=code).event())

    async def run(self) -> None:
        limit = self.app.settings.max_event_bytes
        try:
            while True:
                try:
                    event = await read_event(self.reader, limit)
                except ProtocolError as exc:
                    await self.error(str(exc), exc.code)
                    if exc.fatal:  # the byte stream is out of sync: nothing more to read
                        break
                    continue
                if event is None:
                    break
                await self.handle(event)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            await self.close()

    async def close(self) -> None:
        """The client went away: cancel its work (its generation stops at the next step).
        Over stdio, end of input only means no more requests: finish what was asked."""
        for reply in list(self.replies):
            if not self.finish_on_eof or (reply.streaming and not reply.closed):
                reply.cancel()
        await asyncio.gather(*(r.task for r in list(self.replies)), return_exceptions=True)
        self.writer.close()

    # --- events ------------------------------------------------------------------

    async def handle(self, event: Event) -> None:
        try:
            if Describe.is_type(event.type):
                await self.write(self.app.info().event())
            elif Ping.is_type(event.type):
                await self.write(Pong(text=event.data.get("text")).event())
            elif Synthesize.is_type(event.type):
                await self._synthesize(event)
            elif SynthesizeStart.is_type(event.type):
                await self._stream_start(event)
            elif SynthesizeChunk.is_type(event.type):
                await self._stream_chunk(event)
            elif SynthesizeStop.is_type(event.type):
                await self._stream_stop()
            else:
                await self.error(f"unknown event type {event.type!r}", "unknown-event")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            await self.error(f"malformed {event.type} event: {exc!r}", "bad-event")

    def _start_reply(self, choice: VoiceChoice | None, streaming: bool, data: dict) -> Reply:
        ssml = data.get("text_format") == SynthesizeTextFormat.SSML.value
        reply = Reply(self, choice, streaming=streaming, ssml=ssml, previous=self.last_task)
        self.last_task = reply.task
        self.replies.add(reply)
        reply.task.add_done_callback(lambda _t: self.replies.discard(reply))
        return reply

    async def _voice(self, data: dict) -> VoiceChoice | None:
        """Resolve the request's voice, or send an error and return None."""
        raw = data.get("voice") or {}
        if not isinstance(raw, dict):
            await self.error("'voice' must be an object", "bad-event")
            return None
        voice = SynthesizeVoice(
            name=raw.get("name"), speaker=raw.get("speaker"), language=raw.get("language")
        )
        settings = self.app.settings
        name = voice.name or (None if voice.language else settings.voice)
        speaker = voice.speaker if voice.name else settings.speaker
        for value in (name, speaker, voice.language):
            if value is not None and not isinstance(value, str):
                await self.error("voice name, speaker and language must be strings", "bad-event")
                return None
        try:
            return self.app.chain.resolve(name, speaker, voice.language)
        except BackendError as exc:
            await self.error(str(exc), exc.code)
            return None

    async def _synthesize(self, event: Event) -> None:
        if self.state is State.REJECTED:
            return
        if self.state is State.STREAMING:
            # Home Assistant's compatibility copy of the streamed text: never speak it
            # twice. Keep it only in case no chunk arrives (a client that streams nothing).
            text = event.data.get("text")
            if isinstance(text, str):
                self.stream_fallback_text = text
            return
        text = event.data.get("text")
        if not isinstance(text, str):
            await self.error("synthesize needs a 'text' string", "bad-event")
            return
        if not text.strip():
            await self.error("nothing to say: the text is empty", "empty-text")
            return
        if len(text) > self.app.settings.max_text_chars:
            await self.error(
                f"text of {len(text)} characters exceeds the limit of "
                f"{self.app.settings.max_text_chars}", "text-too-long")
            return
        choice = await self._voice(event.data)
        if choice is None:
            return
        reply = self._start_reply(choice, False, event.data)
        reply.feed(text)
        reply.close()

    async def _stream_start(self, event: Event) -> None:
        if self.state is not State.IDLE:
            await self.error("synthesize-start while a stream is open; send synthesize-stop "
                             "first", "unexpected-event")
            return
        choice = await self._voice(event.data)
        self.stream = self._start_reply(choice, True, event.data)
        self.stream_fallback_text = None
        self.state = State.STREAMING if choice is not None else State.REJECTED

    async def _stream_chunk(self, event: Event) -> None:
        if self.state is State.REJECTED:
            return
        if self.state is not State.STREAMING or self.stream is None:
            await self.error("synthesize-chunk without synthesize-start", "unexpected-event")
            return
        text = event.data.get("text")
        if not isinstance(text, str):
            await self.error("synthesize-chunk needs a 'text' string", "bad-event")
            return
        limit = self.app.settings.max_text_chars
        if self.stream.chars + len(text) > limit:
            await self.error(f"streamed text exceeds the limit of {limit} characters; "
                             "the rest is not spoken", "text-too-long")
            self.stream.close()  # speak what came within the limit, then end properly
            self.state = State.REJECTED
            return
        self.stream.feed(text)

    async def _stream_stop(self) -> None:
        if self.state is State.IDLE or self.stream is None:
            await self.error("synthesize-stop without synthesize-start", "unexpected-event")
            return
        stream = self.stream
        if self.state is State.STREAMING and not stream.has_text and self.stream_fallback_text:
            stream.feed(self.stream_fallback_text[: self.app.settings.max_text_chars])
        stream.close()  # the reply task sends audio-stop and synthesize-stopped
        self.stream = None
        self.stream_fallback_text = None
        self.state = State.IDLE
