"""The event reader, frame by frame: what a client sends is read whole, refused with the
right error, and never leaves the connection out of step. (Random frames: test_fuzz.py.)"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from wyoming.audio import AudioChunk
from wyoming.event import Event, async_read_event

from wyoming_verba.wire import AudioChunkEncoder, ProtocolError, encode_event, read_event

LIMIT = 1024


def frame(header: dict[str, Any], data: bytes = b"", payload: bytes = b"") -> bytes:
    return json.dumps(header).encode() + b"\n" + data + payload


def reader_of(data: bytes, limit: int = LIMIT) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=limit)
    reader.feed_data(data)
    reader.feed_eof()
    return reader


PING = frame({"type": "ping", "data": {"n": 1}})


async def test_header_data_data_section_and_payload() -> None:
    blob = frame({"type": "synthesize", "data": {"text": "old", "voice": {"name": "a"}},
                  "data_length": 15, "payload_length": 3}, b'{"text": "new"}', b"\x00\x01\x02")
    reader = reader_of(blob + PING)
    event = await read_event(reader, LIMIT)
    assert event is not None and event.type == "synthesize"
    assert event.data == {"text": "new", "voice": {"name": "a"}}  # the data section wins
    assert event.payload == b"\x00\x01\x02"
    nxt = await read_event(reader, LIMIT)
    assert nxt is not None and (nxt.type, nxt.data, nxt.payload) == ("ping", {"n": 1}, None)
    assert await read_event(reader, LIMIT) is None


async def test_zero_and_null_lengths_mean_nothing_follows() -> None:
    blob = frame({"type": "describe", "data_length": 0, "payload_length": None}) + PING
    reader = reader_of(blob)
    event = await read_event(reader, LIMIT)
    assert event is not None and (event.type, event.data, event.payload) == ("describe", {}, None)
    assert (await read_event(reader, LIMIT)).type == "ping"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "end", [b"", b'{"type": "ping"', b'{"type": "ping", "data_length": 5}\n{"']
)
async def test_a_connection_closed_mid_event_is_the_end(end: bytes) -> None:
    assert await read_event(reader_of(end), LIMIT) is None


async def test_an_event_exactly_at_the_limit_is_read() -> None:
    data = json.dumps({"text": "x" * (LIMIT - 200 - 14)}).encode()
    payload = b"\x00" * (LIMIT - len(data))
    blob = frame({"type": "x", "data_length": len(data), "payload_length": len(payload)},
                 data, payload)
    event = await read_event(reader_of(blob, limit=4 * LIMIT), LIMIT)
    assert event is not None and len(event.payload or b"") + len(data) == LIMIT


@pytest.mark.parametrize(
    "header",
    [
        {"type": "x", "data_length": LIMIT + 1},
        {"type": "x", "payload_length": LIMIT + 1},
        {"type": "x", "data_length": 600, "payload_length": LIMIT - 599},  # together too large
    ],
)
async def test_an_event_over_the_limit_is_refused_before_reading_it(header: dict) -> None:
    with pytest.raises(ProtocolError) as caught:
        await read_event(reader_of(frame(header)), LIMIT)
    assert caught.value.fatal and caught.value.code == "event-too-large"
    assert "exceeds the limit" in str(caught.value)


async def test_a_header_line_over_the_limit_is_refused() -> None:
    with pytest.raises(ProtocolError) as caught:
        await read_event(reader_of(b'{"type": "' + b"x" * 200 + b'"}\n', limit=64), 64)
    assert caught.value.fatal and caught.value.code == "event-too-large"


@pytest.mark.parametrize("bad", [-1, "5", 1.5, True, [1]])
@pytest.mark.parametrize("key", ["data_length", "payload_length"])
async def test_a_length_that_is_not_a_count_loses_the_stream(key: str, bad: Any) -> None:
    with pytest.raises(ProtocolError) as caught:
        await read_event(reader_of(frame({"type": "x", key: bad}) + PING), LIMIT)
    assert caught.value.fatal and caught.value.code == "bad-event"
    assert key in str(caught.value)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"not json\n", "event header is not valid JSON"),
        (b"\xff\xfe\n", "event header is not valid JSON"),
        (b"[1, 2]\n", "event header must be a JSON object"),
        (frame({"data": {"a": 1}}), "event header has no 'type'"),
        (frame({"type": ""}), "event header has no 'type'"),
        (frame({"type": 5}), "event header has no 'type'"),
        (frame({"type": "x", "data": [1]}), "event 'data' must be a JSON object"),
        (frame({"type": "x", "data_length": 3}, b"{x}"), "x: data is not valid JSON"),
        (frame({"type": "x", "data_length": 2}, b"\xff\xfe"), "x: data is not valid JSON"),
        (frame({"type": "x", "data_length": 3}, b"[1]"), "x: data must be a JSON object"),
        # A frame without a type still has its data and payload consumed.
        (frame({"data_length": 2, "payload_length": 4}, b"{}", b"abcd"),
         "event header has no 'type'"),
    ],
)
async def test_a_bad_event_is_refused_and_the_next_one_is_read(blob: bytes, message: str) -> None:
    reader = reader_of(blob + PING)
    with pytest.raises(ProtocolError) as caught:
        await read_event(reader, LIMIT)
    assert not caught.value.fatal and caught.value.code == "bad-event"
    assert str(caught.value) == message  # the text of the error event the client gets
    event = await read_event(reader, LIMIT)
    assert event is not None and (event.type, event.data) == ("ping", {"n": 1})


async def test_encoded_events_read_back_unchanged() -> None:
    events = [Event("synthesize", {"text": "Hi ☀", "voice": {"name": "a"}}),
              Event("audio-chunk", {"rate": 22050}, b"\x01\x02" * 10), Event("describe")]
    reader = reader_of(b"".join(encode_event(e) for e in events))
    for sent in events:
        got = await read_event(reader, LIMIT)
        assert got is not None
        assert (got.type, got.data, got.payload) == (sent.type, sent.data, sent.payload)
    assert await read_event(reader, LIMIT) is None


@pytest.mark.parametrize(("rate", "width", "channels"), [(24000, 2, 1), (22050, 2, 2),
                                                         (8000, 4, 1)])
@pytest.mark.parametrize("size", [0, 1, 2, 9, 10, 99, 2048, 100_000])
def test_audio_chunks_are_encoded_as_the_library_encodes_them(
        rate: int, width: int, channels: int, size: int) -> None:
    """The fast chunk encoder writes the same bytes as wyoming's write_event, whatever the
    payload's length (its digit count changes the header's length) or the format."""
    audio = bytes(i % 251 for i in range(size))
    encoder = AudioChunkEncoder(rate, width, channels)
    assert encoder.fast  # the installed wyoming's layout is the one the template expects
    encoded = encoder.encode(audio)
    assert encoded == encode_event(AudioChunk(rate, width, channels, audio).event())


async def test_encoded_audio_chunks_read_back_with_the_library() -> None:
    encoder = AudioChunkEncoder(24000, 2, 1)
    pieces = [b"\x01\x02" * n for n in (1, 512, 1024)]
    reader = reader_of(b"".join(encoder.encode(p) for p in pieces))
    for piece in pieces:
        event = await async_read_event(reader)
        assert event is not None
        chunk = AudioChunk.from_event(event)
        assert (chunk.rate, chunk.width, chunk.channels, chunk.audio) == (24000, 2, 1, piece)


def test_an_unforeseen_library_layout_falls_back_to_the_library(monkeypatch) -> None:
    """A wyoming release that writes its header differently (here: payload_length first)
    must not get our template: every chunk is then encoded by the library itself."""
    from wyoming_verba import wire

    def other_layout(event: Event) -> bytes:
        data = json.dumps(event.data).encode()
        header = {"payload_length": len(event.payload or b""), "type": event.type,
                  "data_length": len(data)}
        return json.dumps(header).encode() + b"\n" + data + (event.payload or b"")

    monkeypatch.setattr(wire, "encode_event", other_layout)
    encoder = AudioChunkEncoder(24000, 2, 1)
    assert not encoder.fast
    audio = b"\x01\x02" * 100
    assert encoder.encode(audio) == other_layout(AudioChunk(24000, 2, 1, audio).event())
