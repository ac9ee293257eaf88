"""The remote backend: against a scripted Wyoming upstream (errors, stalls, deaths the
real server never produces on demand) and end to end against a second real
wyoming-verba server on loopback, directly and through a fault-injecting proxy."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import async_read_event, async_write_event
from wyoming.info import Attribution, Describe, Info, TtsProgram, TtsVoice, TtsVoiceSpeaker
from wyoming.tts import Synthesize

from wyoming_verba.backends.base import (
    BackendBusy,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    Pcm,
    SynthesisCancelled,
    Utterance,
    Voice,
    VoiceNotFound,
)
from wyoming_verba.backends.remote.backend import (
    RemoteBackend,
    parse_remote_uri,
    points_at_itself,
    voices_from_info,
)
from wyoming_verba.settings import Settings

from .client import describe, speak

RATE = 16000
CHUNK = b"\x01\x02" * 800  # 50 ms at 16 kHz
VOICE = Voice("gpu-voice", ("en-US",), speakers=("0", "1"))

Script = Callable[[asyncio.StreamWriter], Awaitable[None]]


def free_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fake_info() -> Info:
    attribution = Attribution(name="test", url="")
    voice = TtsVoice(name="gpu-voice", description="GPU voice", attribution=attribution,
                     installed=True, version="1", languages=["en-US"],
                     speakers=[TtsVoiceSpeaker("0"), TtsVoiceSpeaker("1")])
    other = TtsVoice(name="gpu-de", description="", attribution=attribution,
                     installed=False, version="1", languages=["de-DE"])
    program = TtsProgram(name="fake", description="", attribution=attribution,
                         installed=True, version="1", voices=[voice, other])
    return Info(tts=[program])


async def send_ok(writer: asyncio.StreamWriter, chunks: int = 3) -> None:
    await async_write_event(AudioStart(rate=RATE, width=2, channels=1).event(), writer)
    for _ in range(chunks):
        await async_write_event(
            AudioChunk(rate=RATE, width=2, channels=1, audio=CHUNK).event(), writer)
    await async_write_event(AudioStop().event(), writer)


class FakeUpstream:
    """A scripted Wyoming TTS server: `describe` → info; `synthesize` → `script`."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.script: Script = send_ok
        self.info_line: bytes | None = None  # sent raw instead of the info, when set
        self.requests: list[Synthesize] = []
        self.requested = asyncio.Event()
        self.disconnected = asyncio.Event()
        self._server: asyncio.Server | None = None

    @property
    def uri(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    async def start(self) -> FakeUpstream:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            # Python 3.12+ waits for open connections here; the handlers end on their own.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (event := await async_read_event(reader)) is not None:
                if Describe.is_type(event.type) and self.info_line is not None:
                    writer.write(self.info_line)
                    await writer.drain()
                elif Describe.is_type(event.type):
                    await async_write_event(fake_info().event(), writer)
                elif Synthesize.is_type(event.type):
                    self.requests.append(Synthesize.from_event(event))
                    self.requested.set()
                    await self.script(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.disconnected.set()
            writer.close()


async def stall(_writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(3600)


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    server = await FakeUpstream().start()
    yield server
    await server.stop()


@pytest.fixture
async def make_backend() -> AsyncIterator[Callable[..., Awaitable[RemoteBackend]]]:
    started: list[RemoteBackend] = []

    async def make(uri: str, **overrides: object) -> RemoteBackend:
        settings = replace(Settings(), **{"remote_uri": uri, "remote_timeout": 0.5, **overrides})
        backend = RemoteBackend(settings)
        await backend.start()
        started.append(backend)
        return backend

    yield make
    for backend in started:
        await backend.stop()


async def collect(
    backend: RemoteBackend, text: str = "Hello there.", voice: Voice = VOICE,
    speaker: str | None = None, utterance: Utterance | None = None,
) -> list[Pcm]:
    return [c async for c in backend.synthesize(text, voice, speaker, utterance or Utterance("t"))
            if isinstance(c, Pcm)]


# --- pure helpers -----------------------------------------------------------------------


def test_parse_remote_uri() -> None:
    assert str(parse_remote_uri("tcp://gpu-box.lan:10200")) == "tcp://gpu-box.lan:10200"
    assert parse_remote_uri("tcp://[::1]:10201").host == "::1"
    for bad in ("gpu-box:10200", "http://gpu:10200", "tcp://gpu", "tcp://:10200", "tcp://h:x"):
        with pytest.raises(BackendUnavailable):
            parse_remote_uri(bad)


def test_points_at_itself() -> None:
    me = "tcp://0.0.0.0:10200"
    assert points_at_itself(parse_remote_uri("tcp://127.0.0.1:10200"), me)
    assert points_at_itself(parse_remote_uri("tcp://localhost:10200"), me)
    assert not points_at_itself(parse_remote_uri("tcp://127.0.0.1:10201"), me)
    assert not points_at_itself(parse_remote_uri("tcp://gpu-box:10200"), me)
    assert not points_at_itself(parse_remote_uri("tcp://127.0.0.1:10200"), "unix:///tmp/s")


def test_voices_from_info_keeps_names_languages_speakers_and_installed() -> None:
    voices = voices_from_info(fake_info())
    assert [v.name for v in voices] == ["gpu-voice", "gpu-de"]
    assert voices[0].languages == ("en-US",)
    assert voices[0].speakers == ("0", "1")
    assert [v.installed for v in voices] == [True, False]


# --- against a scripted upstream ---------------------------------------------------


async def test_start_needs_a_usable_uri() -> None:
    with pytest.raises(BackendUnavailable, match="remote-uri"):
        await RemoteBackend(Settings()).start()
    with pytest.raises(BackendUnavailable, match="itself"):
        await RemoteBackend(replace(Settings(), remote_uri="tcp://127.0.0.1:10200")).start()


async def test_streams_remote_audio_in_its_own_format(upstream, make_backend) -> None:
    backend = await make_backend(upstream.uri)
    assert [(v.name, v.installed) for v in backend.voices()] == [
        ("gpu-voice", True), ("gpu-de", False)]
    chunks = await collect(backend, "Hello there.", speaker="1")
    assert [(c.rate, c.width, c.channels) for c in chunks] == [(RATE, 2, 1)] * 3
    assert b"".join(c.audio for c in chunks) == CHUNK * 3
    request = upstream.requests[-1]
    assert request.text == "Hello there."
    assert (request.voice.name, request.voice.speaker) == ("gpu-voice", "1")


async def test_voice_that_is_not_the_remotes(upstream, make_backend) -> None:
    local = Voice("en-US-GuyNeural", ("en-US",))
    backend = await make_backend(upstream.uri)
    await collect(backend, voice=local)
    assert upstream.requests[-1].voice.name is None
    assert upstream.requests[-1].voice.language == "en-US"  # the remote picks one

    backend = await make_backend(upstream.uri, remote_voice="gpu-voice")
    await collect(backend, voice=local)
    assert upstream.requests[-1].voice.name == "gpu-voice"


async def test_error_event_is_a_backend_error(upstream, make_backend) -> None:
    async def fail(writer: asyncio.StreamWriter) -> None:
        await async_write_event(Error(text="model exploded", code="boom").event(), writer)

    upstream.script = fail
    backend = await make_backend(upstream.uri)
    with pytest.raises(BackendError, match="model exploded"):
        await collect(backend)
    assert backend.available()  # the remote answered: it is up


async def test_death_mid_stream_is_an_error_not_a_short_reply(upstream, make_backend) -> None:
    async def die(writer: asyncio.StreamWriter) -> None:
        await async_write_event(AudioStart(rate=RATE, width=2, channels=1).event(), writer)
        await async_write_event(AudioChunk(rate=RATE, width=2, channels=1, audio=CHUNK).event(),
                                writer)
        writer.transport.abort()

    upstream.script = die
    backend = await make_backend(upstream.uri)
    got: list[Pcm] = []
    with pytest.raises(BackendError, match="before audio-stop") as info:
        async for chunk in backend.synthesize("Hello.", VOICE, None, Utterance("t")):
            got.append(chunk)
    assert not isinstance(info.value, BackendTimeout)
    assert [c.audio for c in got] == [CHUNK]  # what arrived was passed on as it came
    assert not backend.available()  # and the chain stops choosing it
    assert backend.voices()[0].installed  # while Home Assistant keeps its voices


@pytest.mark.parametrize("where", ["before audio", "between chunks"])
async def test_stalled_remote_times_out(upstream, make_backend, where: str) -> None:
    async def stall_mid(writer: asyncio.StreamWriter) -> None:
        await async_write_event(AudioChunk(rate=RATE, width=2, channels=1, audio=CHUNK).event(),
                                writer)
        await stall(writer)

    upstream.script = stall if where == "before audio" else stall_mid
    backend = await make_backend(upstream.uri)
    with pytest.raises(BackendTimeout):
        await collect(backend)
    await asyncio.wait_for(upstream.disconnected.wait(), 5)  # connection was closed


async def test_cancel_closes_the_connection_promptly(upstream, make_backend) -> None:
    upstream.script = stall
    backend = await make_backend(upstream.uri, remote_timeout=60.0)
    utterance = Utterance("t")
    task = asyncio.create_task(collect(backend, utterance=utterance))
    await asyncio.wait_for(upstream.requested.wait(), 5)
    utterance.cancel.cancel()
    with pytest.raises(SynthesisCancelled):
        await asyncio.wait_for(task, 5)  # far below the 60 s remote timeout
    await asyncio.wait_for(upstream.disconnected.wait(), 5)


async def test_abandoned_stream_closes_the_connection(upstream, make_backend) -> None:
    backend = await make_backend(upstream.uri)
    stream = backend.synthesize("Hello.", VOICE, None, Utterance("t"))
    first = await stream.__anext__()
    assert isinstance(first, Pcm)
    await stream.aclose()
    await asyncio.wait_for(upstream.disconnected.wait(), 5)


async def test_down_at_start_is_not_fatal_and_recovers(make_backend) -> None:
    port = free_port()
    backend = await make_backend(f"tcp://127.0.0.1:{port}", cooldown=0.0)
    assert backend.voices() == []  # no voices yet: the chain skips us
    with pytest.raises(BackendUnavailable, match="cannot connect"):
        await collect(backend)

    server = await FakeUpstream(port).start()  # the GPU host boots
    try:
        for _ in range(200):  # the background refresher finds it (every ~1 s when down)
            if backend.voices():
                break
            await asyncio.sleep(0.05)
        assert [(v.name, v.installed) for v in backend.voices()][0] == ("gpu-voice", True)
        assert len(await collect(backend)) == 3

        await server.stop()  # and goes away again
        with pytest.raises(BackendUnavailable):
            await collect(backend)
        assert not backend.available()
        assert [v.installed for v in backend.voices()] == [True, False]  # as it said
    finally:
        await server.stop()


async def test_malformed_audio_is_rejected(upstream, make_backend) -> None:
    async def bad(writer: asyncio.StreamWriter) -> None:
        await async_write_event(AudioChunk(rate=RATE, width=3, channels=1, audio=b"abc").event(),
                                writer)

    upstream.script = bad
    backend = await make_backend(upstream.uri)
    with pytest.raises(BackendError, match="unusable audio"):
        await collect(backend)


async def test_header_without_type_is_a_backend_error(upstream, make_backend) -> None:
    async def garbage(writer: asyncio.StreamWriter) -> None:
        writer.write(b'{"version": "1.0"}\n')
        await writer.drain()
        await stall(writer)

    upstream.script = garbage
    backend = await make_backend(upstream.uri)
    with pytest.raises(BackendError, match="malformed"):
        await collect(backend)


async def test_null_event_is_a_backend_error(upstream, make_backend) -> None:
    async def null(writer: asyncio.StreamWriter) -> None:
        writer.write(b"null\n")  # valid JSON, not an event: wyoming raises AttributeError
        await writer.drain()
        await stall(writer)

    upstream.script = null
    backend = await make_backend(upstream.uri)
    with pytest.raises(BackendError, match="malformed"):
        await collect(backend)


@pytest.mark.parametrize("info_line", [
    b"null\n",
    b'{"type": "info", "data": {"tts": "x"}}\n',
    b'{"type": "info", "data": {"tts": [{"name": "a"}]}}\n',
])
async def test_malformed_info_does_not_stop_the_voice_refresh(
    upstream, make_backend, info_line: bytes
) -> None:
    upstream.info_line = info_line
    backend = await make_backend(upstream.uri)  # must not raise
    assert backend.voices() == []
    assert backend._refresh_task is not None and not backend._refresh_task.done()
    upstream.info_line = None  # the remote is fixed: the refresher picks its voices up
    backend._refresh_now.set()
    for _ in range(100):
        if backend.voices():
            break
        await asyncio.sleep(0.02)
    assert [(v.name, v.installed) for v in backend.voices()][0] == ("gpu-voice", True)


async def test_refresh_loop_survives_an_unexpected_exception(upstream, make_backend) -> None:
    backend = await make_backend(upstream.uri)
    real, calls = backend.refresh_voices, []

    async def flaky() -> list[Voice]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("bug")
        return await real()

    backend.refresh_voices = flaky  # type: ignore[method-assign]
    for _ in range(2):
        seen = len(calls)
        backend._refresh_now.set()
        for _ in range(100):
            if len(calls) > seen:
                break
            await asyncio.sleep(0.02)
    assert len(calls) == 2
    assert backend._refresh_task is not None and not backend._refresh_task.done()


@pytest.mark.parametrize(("code", "error_type"), [
    ("voice-not-found", VoiceNotFound),
    ("busy", BackendBusy),
    ("backend-busy", BackendBusy),
])
async def test_error_events_that_are_no_failure_of_the_remote(
    upstream, make_backend, code: str, error_type: type
) -> None:
    async def fail(writer: asyncio.StreamWriter) -> None:
        await async_write_event(Error(text="nope", code=code).event(), writer)

    upstream.script = fail
    backend = await make_backend(upstream.uri)
    with pytest.raises(error_type, match="nope"):
        await collect(backend)
    assert backend.available()


async def test_error_event_without_code_or_data(upstream, make_backend) -> None:
    async def fail(writer: asyncio.StreamWriter) -> None:
        writer.write(b'{"type": "error", "data": null}\n')
        await writer.drain()

    upstream.script = fail
    backend = await make_backend(upstream.uri)
    with pytest.raises(BackendError, match="remote error") as info:
        await collect(backend)
    assert type(info.value) is BackendError


# --- end to end: a second real wyoming-verba server on loopback -----------------------


class FaultProxy:
    """TCP proxy to a real upstream that can delay or cut the upstream's reply."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.delay = 0.0  # seconds before the first reply byte is forwarded
        self.cut_after: int | None = None  # close both sides after this many reply bytes
        self.connections = 0
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def uri(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter):
        self.connections += 1
        u_reader, u_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, reply: bool):
            sent = 0
            first = True
            while data := await src.read(4096):
                if reply and first and self.delay:
                    await asyncio.sleep(self.delay)
                first = False
                if reply and self.cut_after is not None and sent + len(data) >= self.cut_after:
                    dst.write(data[: self.cut_after - sent])
                    await dst.drain()
                    c_writer.transport.abort()
                    u_writer.transport.abort()
                    return
                sent += len(data)
                dst.write(data)
                await dst.drain()

        tasks = [asyncio.create_task(pump(c_reader, u_writer, False)),
                 asyncio.create_task(pump(u_reader, c_writer, True))]
        with contextlib.suppress(Exception):
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        c_writer.close()
        u_writer.close()


@pytest.fixture
async def espeak_upstream(verba_server):
    return await verba_server("--backend", "espeak")


@pytest.fixture
async def proxy(espeak_upstream) -> AsyncIterator[FaultProxy]:
    port = int(espeak_upstream.uri.rsplit(":", 1)[1])
    server = await FaultProxy(port).start()
    yield server
    await server.stop()


async def test_e2e_remote_speaks_with_the_upstreams_voices(verba_server, espeak_upstream):
    upstream_info = await describe(espeak_upstream.uri)
    upstream_voices = {v.name for p in upstream_info.tts for v in p.voices}

    front = await verba_server("--backend", "remote", "--remote-uri", espeak_upstream.uri,
                               "--output-rate", "16000")
    info = await describe(front.uri)
    listed = {v.name for p in info.tts for v in p.voices if v.installed}
    assert listed and listed <= upstream_voices

    reply = await speak(front.uri, "The remote server speaks this sentence.")
    assert not reply.errors
    assert reply.rate == 16000 and reply.chunk_formats == {(16000, 2, 1)}
    assert reply.seconds > 0.5 and reply.rms() > 100


async def test_e2e_down_remote_fails_over_to_the_next_backend(verba_server):
    front = await verba_server("--backend", "remote,espeak",
                               "--remote-uri", f"tcp://127.0.0.1:{free_port()}")
    reply = await speak(front.uri, "Nobody is home on the GPU host.")
    assert not reply.errors
    assert reply.seconds > 0.5 and reply.rms() > 100


async def test_e2e_remote_dying_mid_stream(verba_server, espeak_upstream, proxy):
    text = "This sentence is long enough to need several audio chunks from the upstream."
    whole = await speak(espeak_upstream.uri, text)

    alone = await verba_server("--backend", "remote", "--remote-uri", proxy.uri)
    chained = await verba_server("--backend", "remote,espeak", "--remote-uri", proxy.uri)
    proxy.cut_after = len(whole.audio) // 3  # well inside the reply, after both describes
    reply = await speak(alone.uri, text)
    assert reply.errors, "a cut reply must not pass for a complete one"

    reply = await speak(chained.uri, text)
    assert not reply.errors
    assert reply.seconds > 0.5 and reply.rms() > 100


async def test_e2e_slow_remote_times_out_and_fails_over(verba_server, proxy):
    front = await verba_server("--backend", "remote,espeak", "--remote-uri", proxy.uri,
                               "--remote-timeout", "0.5")
    assert proxy.connections == 1  # describe at start-up went through quickly
    proxy.delay = 3.0  # now every reply is later than --remote-timeout
    reply = await speak(front.uri, "The GPU host is far too slow today.")
    assert proxy.connections >= 2  # the remote was asked first
    assert not reply.errors  # and espeak took over when it stayed silent
    assert reply.seconds > 0.5 and reply.rms() > 100
