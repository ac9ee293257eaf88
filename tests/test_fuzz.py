"""Fuzzing the event reader and the live server with random and mutated Wyoming frames.

The reader must turn any byte stream into events, end-of-stream or `ProtocolError`,
nothing else. The live server must answer or close every fuzzed connection, keep no
handler task behind, log no unhandled exception, and still serve a fresh client."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wyoming.event import Event, async_read_event

from tests.client import describe, speak
from wyoming_verba.wire import ProtocolError, read_event

LIMIT = 64 * 1024  # --max-event-bytes for the fuzzed server and reader


def frame(
    event_type: Any,
    data: Any = None,
    payload: bytes = b"",
    *,
    data_section: bool = False,
    header: dict[str, Any] | None = None,
) -> bytes:
    """A Wyoming frame; `data_section` puts data after the header like the library
    does; `header` overrides header fields (wrong types, lying lengths...)."""
    head: dict[str, Any] = {"type": event_type, "version": "1.10.2"}
    body = b""
    if data is not None:
        if data_section:
            body = json.dumps(data).encode()
            head["data_length"] = len(body)
        else:
            head["data"] = data
    if payload:
        head["payload_length"] = len(payload)
    head.update(header or {})
    return json.dumps(head).encode() + b"\n" + body + payload


async def _read_all(data: bytes, limit: int = LIMIT) -> list[Event]:
    """Drive `read_event` over `data` the way the connection handler does."""
    reader = asyncio.StreamReader(limit=limit)
    reader.feed_data(data)
    reader.feed_eof()
    events: list[Event] = []
    for _ in range(len(data) + 2):  # every round consumes bytes or ends: no livelock
        try:
            event = await read_event(reader, limit)
        except ProtocolError as exc:
            assert exc.code in ("bad-event", "event-too-large")
            if exc.fatal:
                break
            continue
        if event is None:
            break
        assert isinstance(event.type, str) and event.type
        assert isinstance(event.data, dict)
        assert event.payload is None or isinstance(event.payload, bytes)
        events.append(event)
    else:
        raise AssertionError("read_event made no progress")
    return events


# --- the reader alone (hypothesis) --------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
lengths = st.one_of(
    st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=5), st.booleans(), st.none(),
    st.lists(st.integers(), max_size=2),
)


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    data = draw(st.one_of(st.none(), st.dictionaries(st.text(max_size=8), json_values, max_size=3),
                          json_values))
    blob = frame(
        draw(st.one_of(st.sampled_from(["synthesize", "ping", "describe", "synthesize-chunk"]),
                       json_values)),
        data,
        draw(st.binary(max_size=64)),
        data_section=draw(st.booleans()),
        header=draw(st.dictionaries(st.sampled_from(["data_length", "payload_length", "data"]),
                                    lengths | json_values, max_size=2)),
    )
    cut = draw(st.integers(0, len(blob)))
    mode = draw(st.sampled_from(["whole", "truncate", "flip", "insert"]))
    if mode == "truncate":
        return blob[:cut]
    if mode == "flip" and blob:
        i = min(cut, len(blob) - 1)
        return blob[:i] + bytes([draw(st.integers(0, 255))]) + blob[i + 1 :]
    if mode == "insert":
        return blob[:cut] + draw(st.binary(min_size=1, max_size=16)) + blob[cut:]
    return blob


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated_frames() | st.binary(max_size=200), min_size=1, max_size=5),
       st.integers(64, LIMIT))
def test_reader_raises_nothing_but_protocol_errors(frames, limit):
    asyncio.run(_read_all(b"".join(frames), limit))


@settings(max_examples=100, deadline=None)
@given(st.text(), st.dictionaries(st.text(max_size=5), json_values, max_size=3),
       st.binary(max_size=100), st.booleans())
def test_reader_round_trips_valid_frames(event_type, data, payload, data_section):
    """Whatever the reader does with garbage, a valid frame after it comes through."""
    events = asyncio.run(_read_all(frame("ping", {"text": event_type}) +
                                   frame("synthesize", data, payload, data_section=data_section)))
    assert events[0].type == "ping" and events[0].data == {"text": event_type}
    assert events[1].type == "synthesize"
    assert events[1].data == data and events[1].payload == (payload or None)


async def test_deep_json_is_a_protocol_error_not_a_crash():
    """json.loads raises RecursionError (not ValueError) past ~1000 levels: the reader
    must report it as a bad event, and the line was consumed, so the stream stays usable."""
    deep = b"[" * 5000 + b"]" * 5000
    body = b'{"x": ' + deep + b"}"
    data = (b'{"type": "ping", "x": ' + deep + b"}\n"
            + frame("ping", header={"data_length": len(body)}) + body
            + frame("ping", {"text": "after"}))
    events = await _read_all(data, 256 * 1024)
    assert [e.data.get("text") for e in events] == ["after"]


# --- the live server ----------------------------------------------------------------

NASTY: list[Any] = [-1, 0, 2**64, 10**30, 1.5, "12", None, True, [], {}, "\ud800",
                    "x" * 1000, [[[[[[[]]]]]]], {"a": {"b": {"c": None}}}]
TEXTS = ["Hello.", "", "   ", "Zwölf Boxkämpfer jagen Viktor. ", "🙂🙂", "a\u0000b.",
         "\u202eevil\u202c.", "**bold** <speak>x</speak>", "word " * 50, "\ud800 lone.",
         "日本語のテキスト。"]


def _valid_frames(rng: random.Random) -> list[bytes]:
    text = rng.choice(TEXTS)
    return rng.choice([
        [frame("ping", {"text": "p"})],
        [frame("describe")],
        [frame("synthesize", {"text": text}, data_section=rng.random() < 0.5)],
        [frame("synthesize-start", {"voice": {"name": "en-us"}}),
         frame("synthesize-chunk", {"text": text}),
         frame("synthesize", {"text": text}),
         frame("synthesize-stop")],
        [frame("audio-chunk", {"rate": 16000, "width": 2, "channels": 1}, b"\0" * 64)],
        [frame("synthesize", {"text": text, "voice": rng.choice(NASTY)})],
        [frame("synthesize-chunk", {"text": text}), frame("synthesize-stop")],
    ])


def _mutate(rng: random.Random, blob: bytes) -> bytes:
    kind = rng.randrange(12)
    cut = rng.randrange(len(blob) + 1)
    if kind == 0:  # truncated header or body
        return blob[:cut]
    if kind == 1:  # flipped bytes
        data = bytearray(blob)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == 2:  # binary garbage, with or without a newline
        return blob[:cut] + rng.randbytes(rng.randint(1, 300)) + rng.choice([b"", b"\n"])
    if kind in (3, 4):  # a header field set to something nasty
        head = json.loads(blob.split(b"\n", 1)[0])
        head[rng.choice(["type", "data", "data_length", "payload_length", "version"])] = (
            rng.choice(NASTY))
        return json.dumps(head).encode() + b"\n"
    if kind == 5:  # lengths that lie about what follows
        return frame("synthesize", header={"data_length": rng.randint(1, 50)}) + b'{"text":'
    if kind == 6:  # huge, negative or non-finite numbers as raw JSON
        number = rng.choice([b"-5", b"1e999", b"-1e999", b"NaN", b"Infinity", b"9" * 400])
        return b'{"type": "ping", "payload_length": ' + number + b"}\n"
    if kind == 7:  # deep JSON in the header or the data section
        deep = b"[" * 3000 + b"]" * 3000
        if rng.random() < 0.5:
            return b'{"type": "ping", "d": ' + deep + b"}\n"
        return frame("ping", header={"data_length": len(deep)}) + deep
    if kind == 8:  # a payload without data, or a payload length over the limit
        return rng.choice([frame("synthesize", payload=b"abc"),
                           frame("synthesize", header={"payload_length": LIMIT * 4})])
    if kind == 9:  # a header line longer than the limit
        return b'{"type": "ping", "pad": "' + b"y" * (LIMIT + 10) + b'"}\n'
    if kind == 10:  # empty and whitespace lines, JSON that is not an object
        return rng.choice([b"\n", b"   \n", b"null\n", b'"ping"\n', b"[1,2]\n", b"{}\n"])
    return blob


async def _fuzz_connection(port: int, payload: bytes, idle: float = 0.5) -> list[Event]:
    """Send `payload` and a ping, read until the server goes quiet, then half-close
    and read until the server closes (end of input cancels unfinished replies)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    events: list[Event] = []
    try:
        try:
            writer.write(payload + frame("ping", {"text": "end"}))
            await writer.drain()
        except ConnectionError:  # the server may close first (a fatal error): fine
            pass
        while True:
            try:
                event = await asyncio.wait_for(async_read_event(reader), idle)
            except TimeoutError:  # quiet: replies are done, or it waits for lying lengths
                break
            if event is None:
                return events
            events.append(event)
        try:
            writer.write_eof()
        except (ConnectionError, OSError):
            pass
        while (event := await asyncio.wait_for(async_read_event(reader), 15)) is not None:
            events.append(event)
    except ConnectionError:
        pass
    finally:
        writer.close()
    return events


async def test_live_server_survives_fuzzed_connections(verba_server):
    srv = await verba_server("--backend", "espeak", "--max-event-bytes", str(LIMIT),
                             "--max-text-chars", "2000")
    loop = asyncio.get_running_loop()
    unhandled: list[dict] = []
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    rng = random.Random(20240605)
    seen: list[Event] = []
    try:
        for _batch in range(8):
            payloads = []
            for _ in range(8):
                frames = [b for _ in range(rng.randint(1, 6)) for b in _valid_frames(rng)]
                frames = [_mutate(rng, f) if rng.random() < 0.6 else f for f in frames]
                payloads.append(b"".join(frames))
            results = await asyncio.gather(*(_fuzz_connection(srv.server.port, p)
                                              for p in payloads))
            for events in results:
                seen += events
    finally:
        loop.set_exception_handler(previous_handler)

    # Every fuzzed connection ended (none hung), and the fuzz hit all three outcomes.
    codes = {e.data.get("code") for e in seen if e.type == "error"}
    assert {"bad-event", "event-too-large", "unknown-event"} <= codes, codes
    assert any(e.type == "audio-chunk" for e in seen)
    assert any(e.type == "pong" for e in seen)
    assert all(isinstance(e.data.get("code"), str) for e in seen if e.type == "error")

    for _ in range(100):  # closed connections leave no handler task behind
        if not srv.server.handlers:
            break
        await asyncio.sleep(0.05)
    assert not srv.server.handlers
    messages = [f"{c.get('message')}: {c.get('exception')!r}" for c in unhandled]
    assert messages == []

    info = await describe(srv.uri)
    assert info.tts and all(v.installed for v in info.tts[0].voices)
    reply = await speak(srv.uri, "Still talking after the fuzz.")
    assert reply.errors == [] and reply.seconds > 0.5


async def test_lone_surrogate_text_does_not_trip_the_breaker(verba_server):
    """JSON may carry a lone surrogate (\\ud800) that no UTF-8 encoder accepts. Such
    text is the client's fault: it must not count as a backend failure, or two
    requests mark every voice uninstalled for the whole cool-down."""
    srv = await verba_server("--backend", "espeak")
    for _ in range(3):
        events = await _fuzz_connection(
            srv.server.port, b'{"type": "synthesize", "data": {"text": "Hi \\ud800 there."}}\n')
        assert "synthesis-failed" not in [e.data.get("code") for e in events]
    info = await describe(srv.uri)
    assert all(v.installed for v in info.tts[0].voices)
