"""Clients that misbehave the way homes do must not hurt anyone else: a satellite that
freezes and stops reading, connections left half-open when Wi-Fi drops, events sent by
halves. Each case runs against a real server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time

import pytest
from wyoming.event import async_read_event

from tests.client import speak
from tests.fakes.tone_backend import Faults, ToneBackend

FROZEN_TEXT = "Hello there. " + "and then " * 1100  # a first sentence, then ~10,000 chars


def _line(obj: dict) -> bytes:
    return json.dumps(obj).encode() + b"\n"


async def frozen_client(port: int, text: str = FROZEN_TEXT) -> socket.socket:
    """Ask for a long reply, then never read again (a receive buffer of a few KB, so
    the server's writes back up at once, as they do for a satellite that froze)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    await asyncio.get_running_loop().sock_sendall(
        sock, _line({"type": "synthesize", "data": {"text": text}}))
    return sock


async def wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


@pytest.mark.parametrize("backend", ["espeak", "piper"])
async def test_a_frozen_client_does_not_stall_the_others(verba_server, backend):
    if backend == "piper":
        pytest.importorskip("piper")
    srv = await verba_server("--backend", backend, "--no-piper-download",
                             "--write-timeout", "4", "--max-text-chars", "20000")
    frozen = await frozen_client(srv.server.port)
    try:
        await asyncio.sleep(3.0)  # the frozen reply has long since filled every buffer
        assert len(srv.server.handlers) == 1  # still connected: within --write-timeout
        # Everybody else is served as usual while the frozen client is still there.
        for i in range(3):
            reply = await asyncio.wait_for(speak(srv.uri, f"Reply number {i} is here."), 10)
            assert reply.errors == [] and reply.seconds > 0.8
        # After --write-timeout without reading, it is dropped and its reply cancelled.
        assert await wait_for(lambda: not srv.server.handlers, 10)
    finally:
        frozen.close()


async def test_a_frozen_client_is_dropped_after_the_write_timeout(verba_server, caplog):
    caplog.set_level("INFO")
    srv = await verba_server("--backend", "espeak", "--write-timeout", "1",
                             "--max-text-chars", "20000")
    frozen = await frozen_client(srv.server.port)
    try:
        started = time.monotonic()
        assert await wait_for(lambda: srv.server.handlers, 5)
        assert await wait_for(lambda: not srv.server.handlers, 10)
        assert time.monotonic() - started < 8  # one second of no reading, not forever
        assert "read nothing for 1 s: dropping it" in caplog.text
        assert "outcome=cancelled" in caplog.text
        assert "Traceback" not in caplog.text
    finally:
        frozen.close()


async def test_a_frozen_client_is_dropped_while_its_reply_waits_inside_a_sentence(
        verba_server, caplog):
    """The drop does not wait for the end of a sentence: here the backend hangs mid-
    sentence (as a busy pool, the GPU or a slow network would), the sentence timeout is
    far away, and the client that reads nothing is still dropped after --write-timeout,
    its reply cancelled."""
    caplog.set_level("INFO")
    # One sentence of 2,000 words; 190 s of audio (9 MB) before the hang: more than the
    # kernel's socket buffers hold, so the server's own buffer backs up.
    tone = ToneBackend(faults=Faults(stall_after_words=1900))
    srv = await verba_server("--write-timeout", "1", "--sentence-timeout", "60",
                             "--max-text-chars", "20000", "--max-sentence-chars", "20000",
                             backends=[tone])
    frozen = await frozen_client(srv.server.port, "word " * 2000)
    try:
        assert await wait_for(lambda: tone.attempts, 5)
        started = time.monotonic()
        assert await wait_for(lambda: not srv.server.handlers, 10)
        assert time.monotonic() - started < 3  # about the 1 s limit, not the 60 s timeout
        name = f"127.0.0.1:{frozen.getsockname()[1]}"
        assert f"{name} read nothing for 1 s: dropping it" in caplog.text
        assert await wait_for(lambda: tone.cancelled == 1, 5)
        # Dropped means closed at once: what the server still held back for it is thrown
        # away (only what the kernel already had arrives), not sent whenever it reads.
        frozen.setblocking(True)
        frozen.settimeout(5)
        received = 0
        with contextlib.suppress(ConnectionResetError):
            while chunk := frozen.recv(1 << 20):
                received += len(chunk)
        assert received < 8_000_000
    finally:
        frozen.close()


async def test_a_slow_reader_is_not_dropped(verba_server):
    """A client that keeps reading, however slowly, is not frozen: the same 9 MB reply,
    read a few KB at a time (a 4 KB receive buffer) with pauses, arrives whole with a
    0.5 s --write-timeout. The kernel hands the transport more only once a third of its
    send buffer is free, so progress must be counted at the kernel, not the transport."""
    tone = ToneBackend()
    srv = await verba_server("--write-timeout", "0.5", "--max-text-chars", "20000",
                             "--max-sentence-chars", "20000", backends=[tone])
    sock = await frozen_client(srv.server.port, "word " * 2000)
    loop = asyncio.get_running_loop()
    received = b""
    try:
        while b'"audio-stop"' not in received[-4096:]:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 18), 10)
            assert chunk, "the server closed a client that was reading"
            received += chunk
            await asyncio.sleep(0.002)
        assert len(received) > 8_000_000 and tone.cancelled == 0
        # Having read everything, it may stay quiet as long as it likes: nothing is held
        # back for it, so nothing times out (only --idle-timeout ends an idle connection).
        await asyncio.sleep(1.5)
        await loop.sock_sendall(sock, _line({"type": "ping"}))
        pong = await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
        assert b'"pong"' in pong
    finally:
        sock.close()


async def test_silent_connections_over_the_limit_make_room(verba_server):
    """Connections that never send anything (half-open, left by a satellite that dropped
    off Wi-Fi) must not keep new clients out."""
    srv = await verba_server("--backend", "espeak", "--max-connections", "4")
    silent = [socket.create_connection(("127.0.0.1", srv.server.port)) for _ in range(6)]
    try:
        for i in range(3):
            reply = await asyncio.wait_for(speak(srv.uri, f"Request {i} gets through."), 10)
            assert reply.errors == [] and reply.seconds > 0.5
        assert len(srv.server.handlers) <= 4
    finally:
        for sock in silent:
            sock.close()


async def test_idle_connections_are_closed_after_the_idle_timeout(verba_server):
    srv = await verba_server("--backend", "espeak", "--idle-timeout", "1")
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.server.port)
    writer.write(_line({"type": "ping"}))
    assert (await asyncio.wait_for(async_read_event(reader), 5)).type == "pong"
    started = time.monotonic()
    assert await asyncio.wait_for(async_read_event(reader), 10) is None  # closed by us
    assert 0.9 < time.monotonic() - started < 5
    writer.close()


async def test_a_half_sent_event_does_not_hold_a_slot(verba_server):
    srv = await verba_server("--backend", "espeak", "--idle-timeout", "1")
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.server.port)
    header = {"type": "synthesize", "data_length": 100}
    writer.write(json.dumps(header).encode() + b"\n" + b'{"text": "Hel')  # 13 of 100 bytes
    await writer.drain()
    assert await asyncio.wait_for(async_read_event(reader), 10) is None
    assert await wait_for(lambda: not srv.server.handlers, 5)
    writer.close()


async def test_a_reply_in_progress_is_not_idle(verba_server):
    """The idle timeout counts what is sent too: a long reply outlives it."""
    srv = await verba_server("--backend", "espeak", "--idle-timeout", "1")
    reply = await speak(srv.uri, "Hello, this reply is long. " * 12)
    assert reply.errors == [] and reply.seconds > 10


async def test_connections_use_tcp_keepalive(verba_server):
    srv = await verba_server("--backend", "espeak")
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.server.port)
    writer.write(_line({"type": "ping"}))
    assert (await asyncio.wait_for(async_read_event(reader), 5)).type == "pong"
    (handler,) = srv.server.handlers.values()
    sock = handler.writer.get_extra_info("socket")
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    if hasattr(socket, "TCP_KEEPIDLE"):
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 60
    writer.close()
