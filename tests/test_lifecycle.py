"""Process lifecycle: SIGTERM during a reply, zeroconf registration, the metrics
endpoint, connection limits. SIGTERM and zeroconf run the real CLI in a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from wyoming.client import AsyncClient
from wyoming.event import async_read_event
from wyoming.info import Describe
from wyoming.tts import Synthesize

from tests.client import describe, speak, speak_streaming
from tests.fakes.tone_backend import Faults, ToneBackend
from wyoming_verba.discovery import ZEROCONF_TYPE, advertised_host

SHUTDOWN_TIMEOUT = 2.0
LONG_TEXT = " ".join(f"This is sentence number {i} of a long reply." for i in range(150))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


class Proc:
    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc, self.port = proc, port
        self.uri = f"tcp://127.0.0.1:{port}"

    async def wait_ready(self) -> None:
        for _ in range(300):
            if self.proc.returncode is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}")
            with contextlib.suppress(OSError):
                await asyncio.wait_for(describe(self.uri), 2)
                return
            await asyncio.sleep(0.1)
        raise AssertionError("server did not start")


@pytest.fixture
async def cli_server(tmp_path) -> AsyncIterator:
    procs: list[Proc] = []

    async def start(*argv: str, host: str = "127.0.0.1") -> Proc:
        port = free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wyoming_verba", "--uri", f"tcp://{host}:{port}",
            "--backend", "espeak", "--data-dir", str(tmp_path), "--shutdown-timeout",
            str(SHUTDOWN_TIMEOUT), *argv,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        running = Proc(proc, port)
        procs.append(running)
        await running.wait_ready()
        return running

    yield start
    for p in procs:
        if p.proc.returncode is None:
            p.proc.kill()
            await p.proc.wait()


# --- SIGTERM ------------------------------------------------------------------------


async def test_sigterm_lets_a_reply_finish_then_exits_0(cli_server):
    """A client reading normally gets its whole reply even though SIGTERM came first."""
    srv = await cli_server()
    async with AsyncClient.from_uri(srv.uri) as client:
        await client.write_event(Synthesize(text=LONG_TEXT[:600]).event())
        first = await asyncio.wait_for(client.read_event(), 10)
        assert first is not None and first.type == "audio-start"
        srv.proc.send_signal(signal.SIGTERM)
        audio = 0
        while (event := await asyncio.wait_for(client.read_event(), 10)) is not None:
            if event.type == "audio-chunk":
                audio += len(event.payload or b"")
            if event.type == "audio-stop":
                break
        assert event is not None and event.type == "audio-stop"
        assert audio / 48000 > 10  # ~600 characters: the whole reply, not a stub
        # The connection stays open (HA keeps it): the grace period ends the process.
        t0 = time.monotonic()
        assert await asyncio.wait_for(srv.proc.wait(), SHUTDOWN_TIMEOUT + 10) == 0
        assert time.monotonic() - t0 < SHUTDOWN_TIMEOUT + 5
    assert not accepts(srv.port)


async def test_sigterm_cuts_a_stalled_reply_within_the_shutdown_timeout(cli_server):
    """A client that stops reading blocks the reply on a full socket: shutdown must
    stop accepting at once, cut the reply after --shutdown-timeout and exit 0."""
    srv = await cli_server()
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(json.dumps({"type": "synthesize", "data": {"text": LONG_TEXT}}).encode()
                 + b"\n")
    await writer.drain()
    first = await asyncio.wait_for(async_read_event(reader), 10)
    assert first is not None and first.type == "audio-start"
    await asyncio.sleep(0.5)  # ~5 minutes of audio: the socket buffers fill, the reply waits
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.5)
    assert srv.proc.returncode is None  # still inside the grace period...
    assert not accepts(srv.port)  # ...but no longer accepting
    assert await asyncio.wait_for(srv.proc.wait(), SHUTDOWN_TIMEOUT + 10) == 0
    elapsed = time.monotonic() - t0
    assert SHUTDOWN_TIMEOUT - 0.5 < elapsed < SHUTDOWN_TIMEOUT + 5
    # What was buffered can still be read; then the stream ends without audio-stop
    # (possibly mid-event: the process exits with bytes still in its socket buffer).
    types = []
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while (event := await asyncio.wait_for(async_read_event(reader), 10)) is not None:
            types.append(event.type)
    assert types and set(types) == {"audio-chunk"}
    writer.close()


@pytest.mark.parametrize(("backend", "runs"), [("espeak", 2), ("piper", 4), ("csm", 1)])
async def test_sigterm_during_synthesis_exits_0_within_the_timeout(cli_server, backend, runs):
    """Under s6 or systemd a non-zero exit is a crash. Piper's onnxruntime aborted the
    process (exit -6) in 4 of 5 runs when SIGTERM came mid-sentence."""
    if backend == "piper":
        pytest.importorskip("piper")
        extra: tuple[str, ...] = ("--no-piper-download",)
    elif backend == "csm":
        pytest.importorskip("transformers")
        from tests.fakes.tiny_csm import shared_tiny_csm

        extra = ("--csm-model", str(shared_tiny_csm()), "--csm-device", "cpu",
                 "--startup-wait", "120")
    else:
        extra = ()
    for _ in range(runs):
        srv = await cli_server("--backend", backend, *extra)
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(json.dumps({"type": "synthesize", "data": {"text": LONG_TEXT[:3000]}})
                     .encode() + b"\n")
        await writer.drain()
        first = await asyncio.wait_for(async_read_event(reader), 60)
        assert first is not None and first.type == "audio-start"
        reading = asyncio.create_task(_read_all(reader))  # a client that keeps listening
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(srv.proc.wait(), SHUTDOWN_TIMEOUT + 10)
        elapsed = time.monotonic() - t0
        assert code == 0, f"{backend}: exit status {code}"
        assert elapsed < SHUTDOWN_TIMEOUT + 3, f"{backend}: {elapsed:.2f} s"  # loaded CI: slack
        await reading
        writer.close()


async def _read_all(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(ConnectionError):
        while await reader.read(1 << 16):
            pass


# --- zeroconf -----------------------------------------------------------------------


def _multicast_works() -> str | None:
    """None if an mDNS registration here can be seen by a browser here, else why not."""
    from zeroconf import ServiceInfo, Zeroconf

    name = f"probe-{uuid.uuid4().hex[:8]}.{ZEROCONF_TYPE}"
    try:
        zc, browser = Zeroconf(), Zeroconf()
    except OSError as exc:
        return f"no multicast socket: {exc}"
    try:
        info = ServiceInfo(ZEROCONF_TYPE, name, port=9,
                           addresses=[socket.inet_aton(advertised_host("0.0.0.0"))])
        zc.register_service(info)
        found = ServiceInfo(ZEROCONF_TYPE, name).request(browser, 3000)
        zc.unregister_service(info)
        return None if found else "mDNS queries get no answer on this machine"
    finally:
        zc.close()
        browser.close()


@pytest.fixture(scope="module")
def multicast() -> None:
    reason = _multicast_works()
    if reason:
        print(f"skipping zeroconf tests: {reason}")
        pytest.skip(reason)


async def test_zeroconf_registers_a_real_address_and_says_goodbye(cli_server, multicast):
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

    name = f"verba-test-{uuid.uuid4().hex[:8]}"
    full = f"{name}.{ZEROCONF_TYPE}"
    azc = AsyncZeroconf()
    changes: list[str] = []

    def on_change(zeroconf, service_type, name, state_change) -> None:  # noqa: ARG001
        if name == full:
            changes.append(state_change.name)

    browser = AsyncServiceBrowser(azc.zeroconf, ZEROCONF_TYPE, handlers=[on_change])
    try:
        srv = await cli_server("--zeroconf", name, host="0.0.0.0")
        info = AsyncServiceInfo(ZEROCONF_TYPE, full)
        assert await info.async_request(azc.zeroconf, 5000)
        addresses = info.parsed_addresses()
        assert addresses == [advertised_host("0.0.0.0")] and "0.0.0.0" not in addresses
        assert info.port == srv.port
        assert info.properties.get(b"version")
        # What Home Assistant does next: connect to the advertised address.
        assert (await describe(f"tcp://{addresses[0]}:{info.port}")).tts
        for _ in range(50):
            if "Added" in changes:
                break
            await asyncio.sleep(0.1)
        assert changes[:1] == ["Added"]

        srv.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(srv.proc.wait(), SHUTDOWN_TIMEOUT + 10) == 0
        for _ in range(50):  # the goodbye packet (TTL 0) removes it from every cache
            if "Removed" in changes:
                break
            await asyncio.sleep(0.1)
        assert changes == ["Added", "Removed"], "no mDNS goodbye was sent on shutdown"
    finally:
        await browser.async_cancel()
        await azc.async_close()


async def test_zeroconf_advertises_the_bind_address_when_not_wildcard():
    assert advertised_host("127.0.0.1") == "127.0.0.1"
    lan = advertised_host("0.0.0.0")
    assert lan != "0.0.0.0" and socket.inet_aton(lan)
    assert advertised_host("::") == lan


# --- metrics ------------------------------------------------------------------------


def _scrape(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def _scrape_until(port: int, key: tuple, value: float) -> dict:
    for _ in range(50):  # a reply is recorded just after its last event is written
        samples = await asyncio.to_thread(_scrape, port)
        if samples.get(key) == value:
            return samples
        await asyncio.sleep(0.05)
    raise AssertionError(f"{key} never reached {value}: {samples.get(key)}")


async def test_metrics_endpoint_reflects_requests(verba_server, monkeypatch):
    for proxy in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    port = free_port()
    srv = await verba_server("--backend", "espeak", "--metrics-port", str(port))
    plain = ("verba_requests_total", (("mode", "plain"), ("outcome", "ok")))
    stream = ("verba_requests_total", (("mode", "stream"), ("outcome", "ok")))
    first_audio = ("verba_first_audio_seconds_count", ())

    before = await asyncio.to_thread(_scrape, port)
    assert before.get(plain, 0) == 0 and before[first_audio] == 0

    reply = await speak(srv.uri, "Metrics are counted.")
    assert reply.errors == []
    samples = await _scrape_until(port, plain, 1)
    assert samples[first_audio] == 1
    assert 0 < samples[("verba_first_audio_seconds_sum", ())] < 5
    assert samples[("verba_audio_seconds_total", ())] == pytest.approx(reply.seconds, rel=0.01)
    assert samples[("verba_sentences_total", (("backend", "espeak"),))] == 1

    await speak_streaming(srv.uri, ["One. ", "Two."])
    samples = await _scrape_until(port, stream, 1)
    assert samples[first_audio] == 2

    async with AsyncClient.from_uri(srv.uri) as client:  # an open connection is counted
        await client.write_event(Describe().event())
        await client.read_event()
        samples = await asyncio.to_thread(_scrape, port)
        assert samples[("verba_connections", ())] == 1
        assert samples[("verba_backend_up", (("backend", "espeak"),))] == 1


# --- connection limits --------------------------------------------------------------


async def test_connection_limit_refuses_without_leaking_slots(verba_server):
    slow = ToneBackend(faults=Faults(chunk_delay=0.3))
    srv = await verba_server("--max-connections", "3", backends=[slow])
    host, port = "127.0.0.1", srv.server.port
    held = [await asyncio.open_connection(host, port) for _ in range(3)]
    for _, writer in held:  # all three are speaking: none can make room
        writer.write(json.dumps({"type": "synthesize", "data": {"text": "word " * 50}}).encode()
                     + b"\n")
    for reader, _ in held:
        assert (await asyncio.wait_for(async_read_event(reader), 5)).type == "audio-start"
    assert len(srv.server.handlers) == 3

    for _ in range(20):  # refusals answer busy, close, and take no slot
        reader, writer = await asyncio.open_connection(host, port)
        event = await asyncio.wait_for(async_read_event(reader), 5)
        assert event.type == "error" and event.data["code"] == "busy"
        assert await asyncio.wait_for(async_read_event(reader), 5) is None
        writer.close()
    assert len(srv.server.handlers) == 3

    for _, writer in held:
        writer.close()
    for _ in range(100):
        if not srv.server.handlers:
            break
        await asyncio.sleep(0.05)
    assert not srv.server.handlers
    replies = await asyncio.gather(*(speak(srv.uri, f"Slot {i} is free.") for i in range(3)))
    assert all(r.errors == [] and r.seconds > 0.3 for r in replies)


async def test_port_in_use_exits_1(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wyoming_verba", "--uri", f"tcp://127.0.0.1:{port}",
            "--backend", "espeak", "--data-dir", str(tmp_path),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1 and b"address already in use" in err.lower()
    assert f"cannot listen on tcp://127.0.0.1:{port}".encode() in err
    assert b"speaking with" not in err  # it failed before starting any backend
