"""An HTTP response as a reply's `Outbox`: `reply.Reply` hands it Wyoming events
(audio-start, audio-stop, or an error) and its PCM (`send_audio`) without waiting, exactly
as it hands them to a Wyoming connection; the response's writer takes them from here at
the client's pace. Between sentences the reply waits (`writable`) until the client has
taken what was sent, so a slow reader holds no backend and a reader that stops is dropped."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from wyoming.audio import AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event


@dataclass
class Taken:
    """What the writer takes in one go: the PCM sent since the last take, whether the
    reply's audio has begun and ended, and the error that ended it, if any."""

    audio: bytes
    started: bool
    ended: bool
    error: Error | None


class HttpOutbox:
    def __init__(self, write_timeout: float) -> None:
        self.write_timeout = write_timeout
        self._audio = bytearray()
        self._started = False
        self._ended = False
        self._error: Error | None = None
        self._closed = False
        self._changed = asyncio.Event()  # something arrived for the writer
        self._drained = asyncio.Event()  # the writer has written everything
        self._drained.set()

    # --- the reply's side (reply.Outbox) ------------------------------------------------

    def send(self, event: Event) -> None:
        if self._closed:
            raise ConnectionResetError("the HTTP client went away")
        if AudioStart.is_type(event.type):
            self._started = True
        elif AudioStop.is_type(event.type):
            self._ended = True
        elif Error.is_type(event.type):
            self._error = Error.from_event(event)
            self._ended = True
        else:
            return  # nothing else means anything to an HTTP client
        self._drained.clear()
        self._changed.set()

    def send_audio(self, audio: bytes) -> None:
        if self._closed:
            raise ConnectionResetError("the HTTP client went away")
        self._audio += audio
        self._drained.clear()
        self._changed.set()

    async def writable(self) -> None:
        """Wait until the client has taken everything sent so far; a client that takes
        nothing for `write_timeout` seconds is dropped (ConnectionResetError)."""
        if self._closed:
            raise ConnectionResetError("the HTTP client went away")
        try:
            async with asyncio.timeout(self.write_timeout):
                await self._drained.wait()
        except TimeoutError:
            self.close()
            raise ConnectionResetError("the HTTP client stopped reading") from None
        if self._closed:
            raise ConnectionResetError("the HTTP client went away")

    # --- the writer's side ----------------------------------------------------------

    async def take(self) -> Taken:
        """Wait for something new and take all of it. Call `written` once it is out."""
        await self._changed.wait()
        self._changed.clear()
        taken = Taken(bytes(self._audio), self._started, self._ended, self._error)
        self._audio.clear()
        return taken

    def written(self) -> None:
        if not self._audio and not self._changed.is_set():
            self._drained.set()

    def close(self) -> None:
        """The client is gone: the reply's next send or wait raises ConnectionResetError."""
        self._closed = True
        self._drained.set()
        self._changed.set()
