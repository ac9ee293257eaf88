"""One client connection: read events, answer describe/ping at once, and speak replies.

States per connection: IDLE, or STREAMING between `synthesize-start` and
`synthesize-stop`. A stream that was refused at its start (REFUSED) or cut off because
its text grew past the limit (OVER_LIMIT) swallows its remaining chunks and still
answers its stop. Each reply is spoken by its own task (`reply.Reply`), in order, so
reading (and answering `describe`) goes on while audio is produced."""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import struct
import sys
import time

from wyoming.error import Error
from wyoming.event import Event
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
from .audio import AudioFormat, split_chunks
from .backends.base import BackendError
from .backends.chain import VoiceChoice
from .reply import Reply
from .wire import AudioChunkEncoder, ProtocolError, encode_event, read_event

_LOGGER = logging.getLogger(__name__)


if sys.platform == "linux":  # bytes in a socket's send queue the peer has not acknowledged
    import fcntl
    import termios

    _OUTQ: int | None = termios.TIOCOUTQ
else:
    _OUTQ = None


@functools.cache
def _chunk_encoder(fmt: AudioFormat) -> AudioChunkEncoder:
    return AudioChunkEncoder(fmt.rate, fmt.width, fmt.channels)


class State(enum.Enum):
    IDLE = "idle"
    STREAMING = "streaming"
    REFUSED = "refused"  # synthesize-start was answered with an error
    OVER_LIMIT = "over-limit"  # the streamed text passed --max-text-chars

    @property
    def swallows_chunks(self) -> bool:
        """The stream is still open but no more of its text is spoken."""
        return self in (State.REFUSED, State.OVER_LIMIT)


class BadEvent(ValueError):
    """The client's event is malformed: answered with a `bad-event` error."""


class ConnectionHandler:
    """One client. Writes never wait for the client: a reply hands its audio to the
    socket's buffer and only waits, between sentences, until the client has read it
    (`writable`), so no backend ever waits on a client's socket. A client that reads
    nothing for --write-timeout seconds is dropped and its replies are cancelled, whether
    a reply is between sentences or waiting on a backend (`_watch_writes`)."""

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
        self.last_activity = time.monotonic()  # an event read or sent
        self.dropped = False
        self._outgoing: list[bytes] = []  # sent in this turn of the loop, written together
        self._written = 0  # bytes handed to the transport
        self._watchdog: asyncio.Task | None = None

    # --- writing -------------------------------------------------------------------

    def send(self, event: Event) -> None:
        """Queue an event for the client without waiting. Raises ConnectionResetError
        once the client is gone."""
        self.send_encoded(encode_event(event))

    def send_audio(self, audio: bytes) -> None:
        """The stream's PCM, cut into audio-chunks of at most --samples-per-chunk."""
        fmt = self.app.output_format
        encode = _chunk_encoder(fmt).encode
        pieces = split_chunks(audio, fmt, self.app.settings.samples_per_chunk)
        self.send_encoded(b"".join([encode(piece) for piece in pieces]))

    def send_encoded(self, data: bytes) -> None:
        """`send` for events already encoded. Everything sent in one turn of the event
        loop goes out in one write: one system call, not one per audio chunk."""
        if self.writer.is_closing():
            raise ConnectionResetError(f"{self.name} went away")
        if not self._outgoing:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outgoing.append(data)
        self.last_activity = time.monotonic()

    def _flush(self) -> None:
        data, self._outgoing = b"".join(self._outgoing), []
        if data and not self.writer.is_closing():
            self.writer.write(data)
            self._written += len(data)
            if self._watchdog is None and self.writer.transport.get_write_buffer_size():
                self._watchdog = asyncio.create_task(self._watch_writes(),
                                                     name=f"{self.name} writes")

    async def _watch_writes(self) -> None:
        """Runs while the socket holds back data: a client that takes none of it for
        --write-timeout is dropped, whether its reply is between sentences (`writable`) or
        waiting inside one (a busy pool, the GPU, a slow network backend)."""
        limit = self.app.settings.write_timeout
        transport = self.writer.transport
        taken, since = -1, time.monotonic()
        try:
            while transport.get_write_buffer_size() and not transport.is_closing():
                now_taken = self._taken()  # one look at the kernel's queue per round
                if now_taken != taken:  # the client read something
                    taken, since = now_taken, time.monotonic()
                elif time.monotonic() - since >= limit:
                    self._drop_frozen(limit)
                    return
                await asyncio.sleep(min(0.25, limit / 4))
        finally:
            self._watchdog = None

    def _drop_frozen(self, limit: float) -> None:
        if not self.dropped:
            _LOGGER.info("%s read nothing for %.0f s: dropping it", self.name, limit)
        self.close(drop=True)

    async def writable(self) -> None:
        """Wait until the client has read what was sent (the socket's buffer is below its
        high-water mark). A slow reader is waited for; one that reads nothing for
        --write-timeout is dropped by `_watch_writes`, which runs whenever the buffer
        holds anything, and that ends this wait too."""
        self._flush()
        await self.writer.drain()
        if self.dropped:
            raise ConnectionResetError(f"{self.name} stopped reading")

    def _taken(self) -> int:
        """Bytes the client's side has taken so far: handed to the transport, minus what
        the transport holds back and what the kernel has not had acknowledged. The kernel's
        queue counts: it holds megabytes and only hands the transport more once a third of
        it is free, so a slow reader looks stuck to the transport for many seconds."""
        held = self.writer.transport.get_write_buffer_size()
        sock = self.writer.get_extra_info("socket")
        if _OUTQ is not None and sock is not None:
            try:
                held += struct.unpack("i", fcntl.ioctl(sock.fileno(), _OUTQ, b"\0" * 4))[0]
            except (OSError, ValueError):  # not a TCP socket (stdio), or already closed
                pass
        return self._written - held

    def error(self, text: str, code: str) -> None:
        _LOGGER.warning("%s: %s (%s)", self.name, text, code)
        self.send(Error(text=text, code=code).event())

    def close(self, *, drop: bool = False) -> None:
        """End the connection from our side: the read loop sees the end and cancels the
        replies. `drop` discards what is still buffered for the client."""
        self.dropped = self.dropped or drop
        if drop:
            self._outgoing.clear()
            self.writer.transport.abort()
        else:
            self._flush()
            self.writer.close()
        self.reader.feed_eof()

    @property
    def speaking(self) -> bool:
        """A reply is in progress on this connection."""
        return bool(self.replies)

    # --- reading -------------------------------------------------------------------

    async def run(self) -> None:
        limit = self.app.settings.max_event_bytes
        try:
            while True:
                try:
                    event = await read_event(self.reader, limit)
                except ProtocolError as exc:
                    self.error(str(exc), exc.code)
                    if exc.fatal:  # the byte stream is out of sync: nothing more to read
                        break
                    continue
                if event is None:
                    break
                self.last_activity = time.monotonic()
                await self.handle(event)
                await self.writable()  # a client that asks but never reads waits here
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            await self._disconnected()

    async def _disconnected(self) -> None:
        """The client went away: cancel its work (its generation stops at the next step).
        Over stdio, end of input only means no more requests: finish what was asked."""
        for reply in list(self.replies):
            if self.dropped or not self.finish_on_eof or (
                reply.streaming and not reply.text_ended
            ):
                reply.cancel()
        await asyncio.gather(*(r.task for r in list(self.replies)), return_exceptions=True)
        if not self.dropped:
            self._flush()
        self.writer.close()
        if self._watchdog is not None:
            self._watchdog.cancel()

    # --- events ------------------------------------------------------------------

    async def handle(self, event: Event) -> None:
        """Answer one event. Malformed input gets `bad-event`; a bug here gets logged
        with its traceback and an `internal-error`, and the connection goes on."""
        try:
            if Describe.is_type(event.type):
                self.send_encoded(self.app.info_bytes(encode_event))
            elif Ping.is_type(event.type):
                text = event.data.get("text")
                self.send(Pong(text=text if isinstance(text, str) else None).event())
            elif Synthesize.is_type(event.type):
                self._synthesize(event)
            elif SynthesizeStart.is_type(event.type):
                self._stream_start(event)
            elif SynthesizeChunk.is_type(event.type):
                self._stream_chunk(event)
            elif SynthesizeStop.is_type(event.type):
                self._stream_stop()
            else:
                self.error(f"unknown event type {event.type!r}", "unknown-event")
        except BadEvent as exc:
            self.error(f"{event.type}: {exc}", "bad-event")
        except ConnectionError:
            raise
        except Exception:
            _LOGGER.exception("%s: internal error on %s", self.name, event.type)
            self.send(Error(text=f"internal error on {event.type}; see the server log",
                            code="internal-error").event())

    def _start_reply(self, choice: VoiceChoice | None, streaming: bool, data: dict) -> Reply:
        ssml = data.get("text_format") == SynthesizeTextFormat.SSML.value
        reply = Reply(self.app, self, choice, streaming=streaming, ssml=ssml,
                      previous=self.last_task)
        self.last_task = reply.task
        self.replies.add(reply)
        reply.task.add_done_callback(lambda _t: self._reply_done(reply))
        return reply

    def _reply_done(self, reply: Reply) -> None:
        self.replies.discard(reply)
        self.last_activity = time.monotonic()

    def _resolve_voice(self, data: dict) -> VoiceChoice | None:
        """Resolve the request's voice, or send an error and return None."""
        raw = data.get("voice") or {}
        if not isinstance(raw, dict):
            raise BadEvent("'voice' must be an object")
        voice = SynthesizeVoice(
            name=raw.get("name"), speaker=raw.get("speaker"), language=raw.get("language")
        )
        settings = self.app.settings
        name = voice.name or (None if voice.language else settings.voice)
        speaker = voice.speaker if voice.name else settings.speaker
        for value in (name, speaker, voice.language):
            if value is not None and not isinstance(value, str):
                raise BadEvent("voice name, speaker and language must be strings")
        try:
            return self.app.chain.resolve(name, speaker, voice.language)
        except BackendError as exc:
            self.error(str(exc), exc.code)
            return None

    def _synthesize(self, event: Event) -> None:
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
            raise BadEvent("needs a 'text' string")
        if not text.strip():
            self.error("nothing to say: the text is empty", "empty-text")
            return
        if len(text) > self.app.settings.max_text_chars:
            self.error(
                f"text of {len(text)} characters exceeds the limit of "
                f"{self.app.settings.max_text_chars}", "text-too-long")
            return
        choice = self._resolve_voice(event.data)
        if choice is None:
            return
        reply = self._start_reply(choice, False, event.data)
        reply.feed(text)
        reply.end_text()

    def _stream_start(self, event: Event) -> None:
        if self.state is not State.IDLE:
            self.error("synthesize-start while a stream is open; send synthesize-stop "
                             "first", "unexpected-event")
            return
        choice = self._resolve_voice(event.data)
        self.stream = self._start_reply(choice, True, event.data)
        self.stream_fallback_text = None
        self.state = State.STREAMING if choice is not None else State.REFUSED

    def _stream_chunk(self, event: Event) -> None:
        if self.state.swallows_chunks:
            return
        if self.state is not State.STREAMING or self.stream is None:
            self.error("synthesize-chunk without synthesize-start", "unexpected-event")
            return
        text = event.data.get("text")
        if not isinstance(text, str):
            raise BadEvent("needs a 'text' string")
        limit = self.app.settings.max_text_chars
        if self.stream.chars + len(text) > limit:
            self.error(f"streamed text exceeds the limit of {limit} characters; "
                             "the rest is not spoken", "text-too-long")
            self.stream.end_text()  # speak what came within the limit, then end properly
            self.state = State.OVER_LIMIT
            return
        self.stream.feed(text)

    def _stream_stop(self) -> None:
        if self.state is State.IDLE or self.stream is None:
            self.error("synthesize-stop without synthesize-start", "unexpected-event")
            return
        stream = self.stream
        if self.state is State.STREAMING and not stream.has_text and self.stream_fallback_text:
            stream.feed(self.stream_fallback_text[: self.app.settings.max_text_chars])
        stream.end_text()  # the reply task sends audio-stop and synthesize-stopped
        self.stream = None
        self.stream_fallback_text = None
        self.state = State.IDLE
