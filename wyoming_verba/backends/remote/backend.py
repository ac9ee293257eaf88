"""The `remote` backend: forwards each sentence to another Wyoming TTS server (e.g.
wyoming-verba with CSM on a GPU host) and streams its audio back.

One short-lived connection per sentence: a plain `synthesize` works with every Wyoming
TTS server, a dead connection never poisons the next sentence, and loopback/LAN
connects cost about a millisecond. The remote's voices come from its `describe`,
refreshed in the background, so a GPU host that boots after Home Assistant shows up
on its own; while a host is away the chain passes it by (`available`) and stands in for
its voices."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeVoice

from ...pcm import Pcm
from ...settings import Settings
from ..base import (
    Backend,
    BackendBusy,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    CancelToken,
    Chunk,
    Utterance,
    Voice,
    VoiceNotFound,
)
from ..threads import wait_cancellable

_LOGGER = logging.getLogger(__name__)

STREAM_LIMIT = 1 << 20  # longest header line accepted from the remote
# Error codes of a remote `error` event that say nothing about the remote's health (the
# first two are our own VoiceNotFound / piper VoiceBroken, "busy" is our connection limit):
# the chain hands the sentence on without counting a failure.
VOICE_ERROR_CODES = frozenset({"voice-not-found", "voice-broken"})
BUSY_ERROR_CODES = frozenset({"busy", "backend-busy"})
# What wyoming's parsers raise on well-formed JSON of the wrong shape (`null`, "tts": "x").
MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError)


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"tcp://{self.host}:{self.port}"


def parse_remote_uri(uri: str) -> Endpoint:
    """tcp://HOST:PORT (IPv6 as tcp://[::1]:PORT). Raises BackendUnavailable."""
    parts = urlsplit(uri)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "tcp" or not parts.hostname or port is None:
        raise BackendUnavailable(f"--remote-uri {uri!r}: use tcp://HOST:PORT", backend="remote")
    return Endpoint(parts.hostname, port)


def _is_local(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def points_at_itself(remote: Endpoint, own_uri: str) -> bool:
    """True when the remote is this very server (a request would loop forever)."""
    try:
        own = parse_remote_uri(own_uri)
    except BackendUnavailable:
        return False  # we listen on unix:// or stdio://
    return own.port == remote.port and _is_local(remote.host) and (
        _is_local(own.host) or own.host == remote.host
    )


def voices_from_info(info: Info) -> list[Voice]:
    """The voices of the remote's installed TTS programs, first program first."""
    voices: list[Voice] = []
    seen: set[str] = set()
    for program in info.tts or []:
        if not program.installed:
            continue
        for v in program.voices:
            if v.name in seen:
                continue
            seen.add(v.name)
            voices.append(
                Voice(
                    name=v.name,
                    languages=tuple(v.languages or ()),
                    description=f"{v.description or v.name} (remote {program.name})",
                    speakers=tuple(s.name for s in v.speakers or ()),
                    installed=bool(v.installed),
                )
            )
    return voices


class RemoteBackend(Backend):
    name = "remote"
    normalizes_text = False  # the remote server normalises for its own backends

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timeout = settings.remote_timeout
        self._endpoint: Endpoint | None = None
        self._voices: list[Voice] = []  # as the remote last described them
        self._up = False  # did the last contact with the remote succeed?
        self._refresh_now = asyncio.Event()
        self._refresh_task: asyncio.Task[None] | None = None

    # --- life cycle ------------------------------------------------------------

    async def start(self) -> None:
        if not self.settings.remote_uri:
            raise BackendUnavailable("no --remote-uri given", backend=self.name)
        endpoint = parse_remote_uri(self.settings.remote_uri)
        if points_at_itself(endpoint, self.settings.uri):
            raise BackendUnavailable(
                f"--remote-uri {endpoint} is this server itself", backend=self.name
            )
        self._endpoint = endpoint
        # A GPU host that is down now is not fatal: until it answers we list no
        # voices (the chain passes us by), and the refresher keeps asking.
        try:
            await self.refresh_voices()
        except BackendError as exc:
            _LOGGER.warning("remote %s not reachable yet: %s", endpoint, exc)
        except Exception:  # a bug must not keep the refresher from starting
            self._mark(up=False)
            _LOGGER.exception("remote %s: reading its voices failed", endpoint)
        self._refresh_task = asyncio.create_task(self._refresh_loop(), name="remote-voices")

    async def stop(self) -> None:
        task, self._refresh_task = self._refresh_task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})  # unlike `await task`, never eats a cancel of ours

    # --- voices ----------------------------------------------------------------

    def voices(self) -> list[Voice]:
        return list(self._voices)  # as the remote described them, up or not

    def available(self) -> bool:
        return self._up

    async def refresh_voices(self) -> list[Voice]:
        """Ask the remote's `describe` for its voices. Raises BackendError."""
        try:
            reader, writer = await self._connect()
        except BackendError:
            self._mark(up=False)
            raise
        try:
            await self._write(writer, Describe().event())
            deadline = time.monotonic() + self.timeout
            while True:
                event = await self._read(reader, deadline, None)
                if event is None:
                    raise BackendError("remote closed the connection before info",
                                       backend=self.name)
                if Info.is_type(event.type):
                    break
        except BackendError:
            self._mark(up=False)
            raise
        finally:
            _close(writer)
        try:
            voices = voices_from_info(Info.from_event(event))
        except MALFORMED as exc:
            self._mark(up=False)
            raise BackendError(f"remote sent a malformed info: {exc!r}",
                               backend=self.name) from None
        if not voices:
            _LOGGER.warning("remote %s lists no installed TTS voices", self._endpoint)
        self._voices = voices
        self._mark(up=True)
        return voices

    async def _refresh_loop(self) -> None:
        while True:
            s = self.settings
            interval = s.remote_refresh if self._up else max(s.cooldown, 1.0)
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that
            # races with the event being set, and stop() would then hang.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._refresh_now.wait()
            self._refresh_now.clear()
            try:
                await self.refresh_voices()
            except BackendError as exc:
                _LOGGER.debug("remote voice refresh failed: %s", exc)
            except Exception:  # whatever it was, keep refreshing: the remote may recover
                self._mark(up=False)
                _LOGGER.exception("remote voice refresh failed")

    def _mark(self, *, up: bool) -> None:
        if up != self._up:
            _LOGGER.info("remote %s is %s", self._endpoint, "up" if up else "down")
        self._up = up
        if up and not self._voices:
            self._refresh_now.set()  # answered a sentence but we never saw its voices

    def _lost(self) -> None:
        """A sentence could not reach the remote: mark it unavailable (the chain then
        stops sending it sentences) and probe it once now, so a dropped
        connection to a healthy host costs one sentence, not a whole cool-down."""
        self._mark(up=False)
        self._refresh_now.set()

    # --- synthesis ---------------------------------------------------------------

    def _request_voice(self, voice: Voice, speaker: str | None) -> SynthesizeVoice | None:
        """The remote's own voice by name; otherwise --remote-voice; otherwise let the
        remote pick one for the language."""
        if any(v.name == voice.name for v in self._voices):
            return SynthesizeVoice(name=voice.name, speaker=speaker)
        if self.settings.remote_voice:
            return SynthesizeVoice(name=self.settings.remote_voice)
        if voice.language:
            return SynthesizeVoice(language=voice.language)
        return None

    async def synthesize(
        self, text: str, voice: Voice, speaker: str | None, utterance: Utterance
    ) -> AsyncIterator[Chunk]:
        cancel = utterance.cancel
        cancel.raise_if_cancelled()
        try:
            reader, writer = await self._connect()
        except BackendError:
            self._lost()
            raise
        try:
            request = Synthesize(text=text, voice=self._request_voice(voice, speaker))
            try:
                await self._write(writer, request.event())
            except BackendError:
                self._lost()
                raise
            # Time to first audio, then between chunks: a stalled remote must not
            # hold the reply (Home Assistant sets no read timeout of its own).
            deadline = time.monotonic() + self.timeout
            while True:
                event = await self._read(reader, deadline, cancel)
                if event is None:
                    self._lost()
                    raise BackendError("remote closed the connection before audio-stop",
                                       backend=self.name)
                if AudioChunk.is_type(event.type):
                    pcm = _pcm(event)
                    deadline = time.monotonic() + self.timeout
                    if pcm.audio:
                        yield pcm
                elif AudioStop.is_type(event.type):
                    self._mark(up=True)
                    return
                elif Error.is_type(event.type):
                    raise _remote_error(event)
                elif not AudioStart.is_type(event.type):
                    _LOGGER.debug("remote sent %s during synthesis; ignored", event.type)
        finally:
            _close(writer)  # also how a cancelled or abandoned sentence stops the remote

    # --- wire helpers ------------------------------------------------------------

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        endpoint = self._endpoint
        if endpoint is None:
            raise BackendUnavailable("remote backend not started", backend=self.name)
        try:
            async with asyncio.timeout(self.timeout):
                return await asyncio.open_connection(
                    endpoint.host, endpoint.port, limit=STREAM_LIMIT)
        except TimeoutError:
            raise BackendTimeout(f"connecting to {endpoint} timed out after {self.timeout:g} s",
                                 backend=self.name) from None
        except OSError as exc:
            raise BackendUnavailable(f"cannot connect to {endpoint}: {exc.strerror or exc}",
                                     backend=self.name) from None

    async def _write(self, writer: asyncio.StreamWriter, event: Event) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await async_write_event(event, writer)
        except TimeoutError:
            raise BackendTimeout("writing to the remote timed out", backend=self.name) from None
        except OSError as exc:
            raise BackendError(f"remote connection lost: {exc}", backend=self.name) from None

    async def _read(
        self, reader: asyncio.StreamReader, deadline: float, cancel: CancelToken | None
    ) -> Event | None:
        """The next event (None once the remote closed), polling `cancel` meanwhile.
        The read task is never interrupted half-way through an event: on a timeout or
        cancel the connection is closed by the caller anyway."""
        task = asyncio.ensure_future(_read_event(reader))
        try:
            return await wait_cancellable(
                task, deadline - time.monotonic(), cancel or CancelToken()
            )
        except TimeoutError:
            raise BackendTimeout(
                f"remote {self._endpoint} sent no audio for {self.timeout:g} s",
                backend=self.name,
            ) from None
        finally:
            task.cancel()  # not awaited: that could swallow a cancel aimed at us


async def _read_event(reader: asyncio.StreamReader) -> Event | None:
    """wyoming's reader, with its odd failures turned into BackendError or None."""
    try:
        return await async_read_event(reader)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None  # closed mid-event
    except (*MALFORMED, asyncio.LimitOverrunError) as exc:  # JSONDecodeError is a ValueError
        raise BackendError(f"remote sent a malformed event: {exc!r}", backend="remote") from None


def _remote_error(event: Event) -> BackendError:
    """The remote's `error` event as a typed error: a voice it lacks or a full server is
    no sign of the remote failing (the chain then does not count it)."""
    try:
        error = Error.from_event(event)
        code, text = str(error.code or ""), str(error.text)
    except MALFORMED:
        code, text = "", repr(event.data)
    message = f"remote error ({code or 'no code'}): {text}"
    if code in VOICE_ERROR_CODES:
        return VoiceNotFound(message, backend="remote")
    if code in BUSY_ERROR_CODES:
        return BackendBusy(message, backend="remote")
    return BackendError(message, backend="remote")


def _pcm(event: Event) -> Pcm:
    try:
        chunk = AudioChunk.from_event(event)
    except MALFORMED:
        raise BackendError("remote sent an audio-chunk without its format",
                           backend="remote") from None
    if chunk.width not in (1, 2, 4) or chunk.channels < 1 or not 1000 <= chunk.rate <= 384000:
        raise BackendError(
            f"remote sent unusable audio ({chunk.rate} Hz, {chunk.width} bytes, "
            f"{chunk.channels} channels)", backend="remote"
        )
    frame = chunk.width * chunk.channels
    audio = chunk.audio or b""
    return Pcm(audio[: len(audio) - len(audio) % frame], chunk.rate, chunk.width, chunk.channels)


def _close(writer: asyncio.StreamWriter) -> None:
    # Not awaiting wait_closed(): a dead peer must not hold up the reply.
    with contextlib.suppress(Exception):
        writer.close()
