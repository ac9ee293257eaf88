"""One client connection: read events, answer describe/ping at once, and speak replies.

States per connection: IDLE, or STREAMING between `synthesize-start` and
`synthesize-stop`. A stream that was refused at its start (REFUSED) or cut off because
its text grew past the limit (OVER_LIMIT) swallows its remaining chunks and still
answers its stop. Each reply is spoken by its own task (`reply.Reply`), in order, so
reading (and answering `describe`) goes on while audio is produced."""

from __future__ import annotations

import asyncio
import enum
import logging

from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.info import Describe
from wyoming.ping import Ping, Pong
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeTextFormat,
    SynthesizeVoice,
)

from .app import App
from .backends.base import BackendError
from .backends.chain import VoiceChoice
from .reply import Reply
from .wire import ProtocolError, read_event

_LOGGER = logging.getLogger(__name__)


class State(enum.Enum):
    IDLE = "idle"
    STREAMING = "streaming"
    REFUSED = "refused"  # synthesize-start was answered with an error
    OVER_LIMIT = "over-limit"  # the streamed text passed --max-text-chars

    @property
    def swallows_chunks(self) -> bool:
        """The stream is still open but no more of its text is spoken."""
        return self in (State.REFUSED, State.OVER_LIMIT)


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
            await self._disconnected()

    async def _disconnected(self) -> None:
        """The client went away: cancel its work (its generation stops at the next step).
        Over stdio, end of input only means no more requests: finish what was asked."""
        for reply in list(self.replies):
            if not self.finish_on_eof or (reply.streaming and not reply.text_ended):
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
        reply = Reply(self.app, self.write, choice, streaming=streaming, ssml=ssml,
                      previous=self.last_task)
        self.last_task = reply.task
        self.replies.add(reply)
        reply.task.add_done_callback(lambda _t: self.replies.discard(reply))
        return reply

    async def _resolve_voice(self, data: dict) -> VoiceChoice | None:
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
        if self.state.swallows_chunks:
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
        choice = await self._resolve_voice(event.data)
        if choice is None:
            return
        reply = self._start_reply(choice, False, event.data)
        reply.feed(text)
        reply.end_text()

    async def _stream_start(self, event: Event) -> None:
        if self.state is not State.IDLE:
            await self.error("synthesize-start while a stream is open; send synthesize-stop "
                             "first", "unexpected-event")
            return
        choice = await self._resolve_voice(event.data)
        self.stream = self._start_reply(choice, True, event.data)
        self.stream_fallback_text = None
        self.state = State.STREAMING if choice is not None else State.REFUSED

    async def _stream_chunk(self, event: Event) -> None:
        if self.state.swallows_chunks:
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
            self.stream.end_text()  # speak what came within the limit, then end properly
            self.state = State.OVER_LIMIT
            return
        self.stream.feed(text)

    async def _stream_stop(self) -> None:
        if self.state is State.IDLE or self.stream is None:
            await self.error("synthesize-stop without synthesize-start", "unexpected-event")
            return
        stream = self.stream
        if self.state is State.STREAMING and not stream.has_text and self.stream_fallback_text:
            stream.feed(self.stream_fallback_text[: self.app.settings.max_text_chars])
        stream.end_text()  # the reply task sends audio-stop and synthesize-stopped
        self.stream = None
        self.stream_fallback_text = None
        self.state = State.IDLE
