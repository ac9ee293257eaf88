"""The Wyoming server end to end with the offline voice, driven like Home Assistant."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.event import Event, async_read_event
from wyoming.ping import Ping
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop

from tests.client import describe, read_until, speak, speak_streaming
from tests.fakes.tone_backend import Faults, ToneBackend
from wyoming_verba.audio import convert

TEXT = "The kitchen lights are on. The front door is locked. It is twenty degrees outside."


@pytest.fixture
async def espeak_server(verba_server):
    return await verba_server("--backend", "espeak")


async def test_describe_lists_installed_voices_and_streaming(espeak_server):
    info = await describe(espeak_server.uri)
    assert len(info.tts) == 1
    program = info.tts[0]
    assert program.installed and program.supports_synthesize_streaming
    assert program.version
    names = {v.name for v in program.voices}
    assert "en-us" in names
    assert all(v.installed for v in program.voices)
    languages = {lang for v in program.voices for lang in v.languages}
    assert {"en-US", "de"} & languages or "de-DE" in languages


async def test_plain_synthesize_streams_real_speech(espeak_server):
    reply = await speak(espeak_server.uri, TEXT)
    assert reply.errors == []
    assert reply.types[0] == "audio-start"
    assert reply.types[-1] == "audio-stop"
    assert reply.types.count("audio-start") == 1
    # --output-rate auto: espeak-ng's own 22,050 Hz, not resampled.
    assert (reply.rate, reply.width, reply.channels) == (22050, 2, 1)
    assert reply.chunk_formats == {(22050, 2, 1)}
    # ~80 characters of speech: several seconds, and not silence.
    assert 3.0 < reply.seconds < 12.0
    assert reply.rms() > 300
    short = await speak(espeak_server.uri, "Hello.")
    assert short.seconds < reply.seconds / 3


async def test_streaming_sequence_speaks_each_sentence_once(espeak_server):
    plain = await speak(espeak_server.uri, TEXT)
    chunks = ["The kitchen lig", "hts are on. The front ", "door is locked. It is twenty",
              " degrees outside."]
    streamed = await speak_streaming(espeak_server.uri, chunks)
    assert streamed.errors == []
    assert streamed.types[-2:] == ["audio-stop", "synthesize-stopped"]
    assert streamed.types.count("audio-start") == 1
    assert streamed.chunk_formats == {(22050, 2, 1)}
    # The compatibility `synthesize` with the full text must not be spoken again.
    assert streamed.seconds == pytest.approx(plain.seconds, rel=0.1)


async def test_first_sentence_is_spoken_before_the_stream_ends(espeak_server):
    async with AsyncClient.from_uri(espeak_server.uri) as client:
        await client.write_event(SynthesizeStart().event())
        await client.write_event(SynthesizeChunk(text="The lights are on. ").event())
        # No more text arrives (an LLM calling a tool): audio must come anyway.
        event = await asyncio.wait_for(client.read_event(), 10)
        assert event is not None and AudioStart.is_type(event.type)
        event = await asyncio.wait_for(client.read_event(), 10)
        assert event is not None and AudioChunk.is_type(event.type)
        await client.write_event(SynthesizeChunk(text="Goodbye.").event())
        await client.write_event(SynthesizeStop().event())
        from tests.client import Reply

        reply = await read_until(client, Reply(), "synthesize-stopped")
        assert reply.types[-2:] == ["audio-stop", "synthesize-stopped"]


async def test_state_resets_after_a_stream(espeak_server):
    async with AsyncClient.from_uri(espeak_server.uri) as client:
        first = await speak_streaming(espeak_server.uri, ["One. ", "Two."], client=client)
        assert first.errors == []
        await client.write_event(Synthesize(text="Three.").event())
        from tests.client import Reply

        second = await read_until(client, Reply(), "audio-stop")
        assert second.errors == [] and second.seconds > 0.3
        third = await speak_streaming(espeak_server.uri, ["Four."], client=client)
        assert third.errors == [] and third.seconds > 0.3


async def test_voice_selection_by_name_language_and_unknown(espeak_server):
    english = await speak(espeak_server.uri, "Guten Tag.", voice="en-us")
    german = await speak(espeak_server.uri, "Guten Tag.", language="de")
    assert english.errors == [] and german.errors == []
    assert english.audio != german.audio
    unknown = await speak(espeak_server.uri, "Hello.", voice="no-such-voice")
    assert [e.code for e in unknown.errors] == ["voice-not-found"]
    assert "no-such-voice" in unknown.errors[0].text
    assert unknown.audio == b""


async def test_unknown_voice_in_a_stream_still_ends_the_stream(espeak_server):
    reply = await speak_streaming(espeak_server.uri, ["Hello there."], voice="nobody")
    assert [e.code for e in reply.errors] == ["voice-not-found"]
    async with AsyncClient.from_uri(espeak_server.uri) as client:
        await client.write_event(SynthesizeStart(voice=None).event())
        await client.write_event(SynthesizeStop().event())
        from tests.client import Reply

        done = await read_until(client, Reply(), "synthesize-stopped")
        assert done.types[-1] == "synthesize-stopped"


async def test_ssml_tags_are_never_read(espeak_server):
    plain = await speak(espeak_server.uri, "Hello world, how are you?")
    ssml = await speak(
        espeak_server.uri,
        '<speak><prosody rate="medium">Hello world,</prosody> <emphasis>how</emphasis> '
        "are you?</speak>",
        text_format="ssml",
    )
    assert ssml.errors == []
    assert ssml.seconds == pytest.approx(plain.seconds, rel=0.25)


async def test_markdown_symbols_are_not_spoken(espeak_server):
    plain = await speak(espeak_server.uri, "Bold move. See example.com.")
    marked = await speak(espeak_server.uri, "**Bold** move. See https://www.example.com/a/b?c=1")
    assert marked.seconds == pytest.approx(plain.seconds, rel=0.2)


async def test_output_rate_is_honoured_for_every_chunk(verba_server):
    srv = await verba_server("--backend", "espeak", "--output-rate", "16000")
    reply = await speak(srv.uri, "Testing the rate. Second sentence.")
    assert reply.rate == 16000
    assert reply.chunk_formats == {(16000, 2, 1)}
    assert 1.0 < reply.seconds < 6.0


async def test_auto_output_rate_sends_espeak_unresampled(verba_server, monkeypatch):
    """Resampling to a fixed 24 kHz cost espeak-ng's replies about a fifth of the server's
    CPU under load: `auto` sends the first backend's own rate, and nothing is resampled."""
    made = []
    real = convert._resampler
    monkeypatch.setattr(convert, "_resampler", lambda *rates: made.append(rates) or real(*rates))
    srv = await verba_server("--backend", "espeak")
    assert srv.app.chain.live[0].native_rate() == 22050
    reply = await speak(srv.uri, TEXT)
    assert reply.rate == 22050 and reply.chunk_formats == {(22050, 2, 1)}
    assert reply.seconds > 3.0 and made == []

    explicit = await verba_server("--backend", "espeak", "--output-rate", "24000")
    assert (await speak(explicit.uri, TEXT)).rate == 24000
    assert (22050, 24000) in made


async def test_audio_comes_in_chunks_of_at_most_samples_per_chunk(verba_server):
    """--samples-per-chunk bounds every audio-chunk (a satellite's buffer), cuts only where
    a chunk is full, never inside a sample, and loses nothing: the chunks add up to the
    reply."""
    srv = await verba_server("--backend", "espeak", "--samples-per-chunk", "500")
    reply = await speak(srv.uri, TEXT)
    sizes = [len(AudioChunk.from_event(e).audio) // 2 for e in reply.events
             if AudioChunk.is_type(e.type)]
    assert max(sizes) == 500 and sizes.count(500) > 0.8 * len(sizes)
    assert sum(sizes) * 2 == len(reply.audio) and reply.seconds > 2.0
    assert all(len(AudioChunk.from_event(e).audio) % 2 == 0 for e in reply.events
               if AudioChunk.is_type(e.type))


# --- bad input -------------------------------------------------------------------


async def _raw(uri: str, payload: bytes, reads: int = 1) -> list[Event]:
    host, port = uri.removeprefix("tcp://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(payload)
    await writer.drain()
    events = []
    for _ in range(reads):
        event = await asyncio.wait_for(async_read_event(reader), 10)
        if event is None:
            break
        events.append(event)
    writer.close()
    return events


def _line(obj: dict) -> bytes:
    return json.dumps(obj).encode() + b"\n"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"this is not json\n", "bad-event"),
        (b"[1, 2, 3]\n", "bad-event"),
        (_line({"data": {"text": "hi"}}), "bad-event"),  # no type
        (_line({"type": "synthesize", "data": {}}), "bad-event"),  # no text
        (_line({"type": "synthesize", "data": {"text": 42}}), "bad-event"),
        (_line({"type": "synthesize", "data": {"text": "   "}}), "empty-text"),
        (_line({"type": "synthesize", "data": {"text": "hi", "voice": "x"}}), "bad-event"),
        (_line({"type": "no-such-event"}), "unknown-event"),
        (_line({"type": "synthesize-chunk", "data": {"text": "hi"}}), "unexpected-event"),
        (_line({"type": "synthesize-stop"}), "unexpected-event"),
    ],
)
async def test_bad_input_gets_an_error_and_the_connection_stays_usable(
    espeak_server, payload, code
):
    events = await _raw(espeak_server.uri, payload + _line({"type": "ping"}), reads=2)
    assert events[0].type == "error" and events[0].data["code"] == code, events
    assert events[1].type == "pong"


async def test_huge_text_is_refused(verba_server):
    srv = await verba_server("--backend", "espeak", "--max-text-chars", "1000")
    reply = await speak(srv.uri, "word " * 400)
    assert [e.code for e in reply.errors] == ["text-too-long"]
    streamed = await speak_streaming(srv.uri, ["Fine. ", "word " * 300])
    assert [e.code for e in streamed.errors] == ["text-too-long"]
    assert streamed.types[-1] == "synthesize-stopped"
    assert streamed.seconds > 0.2  # what came within the limit was spoken


async def test_oversized_event_is_refused_without_reading_it(verba_server):
    srv = await verba_server("--backend", "espeak", "--max-event-bytes", "4096")
    header = _line({"type": "synthesize", "data_length": 10_000_000})
    events = await _raw(srv.uri, header, reads=2)
    assert events[0].type == "error" and events[0].data["code"] == "event-too-large"
    assert len(events) == 1  # the stream is out of sync: the server closed it
    long_header = b'{"type": "ping", "pad": "' + b"x" * 10_000 + b'"}\n'
    events = await _raw(srv.uri, long_header, reads=2)
    assert events[0].data["code"] == "event-too-large"
    assert (await describe(srv.uri)).tts  # others are still served


async def test_data_section_is_merged_like_the_wyoming_library(espeak_server):
    data = json.dumps({"text": "Hello there."}).encode()
    header = _line({"type": "synthesize", "data_length": len(data)})
    events = await _raw(espeak_server.uri, header + data, reads=3)
    assert [e.type for e in events[:2]] == ["audio-start", "audio-chunk"]


# --- concurrency -----------------------------------------------------------------


async def test_describe_is_answered_during_a_long_synthesis(espeak_server):
    long_text = " ".join(f"This is sentence number {i} of a long reply." for i in range(40))
    speaking = asyncio.create_task(speak(espeak_server.uri, long_text))
    async with AsyncClient.from_uri(espeak_server.uri) as client:
        await client.write_event(Synthesize(text=long_text).event())
        await asyncio.sleep(0.3)
        loop = asyncio.get_running_loop()
        for _ in range(3):
            t0 = loop.time()
            info = await describe(espeak_server.uri)
            assert info.tts
            assert loop.time() - t0 < 1.0  # Home Assistant gives up after 5 s
            await client.write_event(Ping().event())
    reply = await speaking
    assert reply.errors == [] and reply.seconds > 20


async def test_disconnect_cancels_the_reply(verba_server):
    tone = ToneBackend(faults=Faults(chunk_delay=0.2))
    srv = await verba_server(backends=[tone])
    async with AsyncClient.from_uri(srv.uri) as client:
        await client.write_event(Synthesize(text="word " * 200).event())
        event = await asyncio.wait_for(client.read_event(), 5)
        assert event is not None and event.type == "audio-start"
    for _ in range(50):
        if tone.cancelled:
            break
        await asyncio.sleep(0.05)
    assert tone.cancelled == 1
    assert tone.spoken == []


async def test_connection_limit_answers_busy_while_every_connection_speaks(verba_server):
    srv = await verba_server("--max-connections", "1",
                             backends=[ToneBackend(faults=Faults(chunk_delay=0.2))])
    async with AsyncClient.from_uri(srv.uri) as first:
        await first.write_event(Synthesize(text="word " * 100).event())
        assert (await first.read_event()).type == "audio-start"
        events = await _raw(srv.uri, _line({"type": "describe"}))
        assert events[0].type == "error" and events[0].data["code"] == "busy"
    await asyncio.sleep(0.1)
    assert (await describe(srv.uri)).tts


async def test_at_the_limit_the_longest_idle_connection_makes_room(verba_server):
    srv = await verba_server("--backend", "espeak", "--max-connections", "2")
    older = await asyncio.open_connection("127.0.0.1", srv.server.port)
    await asyncio.sleep(0.05)
    newer = await asyncio.open_connection("127.0.0.1", srv.server.port)
    for _, writer in (older, newer):  # both handlers are running, neither speaks
        writer.write(_line({"type": "ping"}))
    for reader, _ in (older, newer):
        assert (await asyncio.wait_for(async_read_event(reader), 5)).type == "pong"
    older[1].write(_line({"type": "ping"}))  # the older one was active last...
    assert (await asyncio.wait_for(async_read_event(older[0]), 5)).type == "pong"
    reply = await speak(srv.uri, "There is room for me.")  # ...so the newer one goes
    assert reply.errors == [] and reply.seconds > 0.5
    assert await asyncio.wait_for(async_read_event(newer[0]), 5) is None
    older[1].write(_line({"type": "ping"}))
    assert (await asyncio.wait_for(async_read_event(older[0]), 5)).type == "pong"
    for _, writer in (older, newer):
        writer.close()


async def test_stdio_server_as_a_subprocess(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wyoming_verba", "--uri", "stdio://", "--backend", "espeak",
        "--data-dir", str(tmp_path),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdin and proc.stdout
    proc.stdin.write(_line({"type": "describe"}))
    proc.stdin.write(_line({"type": "synthesize", "data": {"text": "Hello from stdio."}}))
    await proc.stdin.drain()
    types, audio = [], 0
    while True:
        event = await asyncio.wait_for(async_read_event(proc.stdout), 30)
        assert event is not None
        types.append(event.type)
        if AudioChunk.is_type(event.type):
            audio += len(event.payload or b"")
        if AudioStop.is_type(event.type):
            break
    proc.stdin.close()
    assert await asyncio.wait_for(proc.wait(), 30) == 0
    assert types[0] == "info" and types[1] == "audio-start"
    assert audio / 48000 > 0.5


async def test_an_internal_error_still_ends_the_reply(verba_server):
    from wyoming_verba.pcm import Pcm

    class BadAudio(ToneBackend):
        async def synthesize(self, text, voice, speaker, utterance):
            yield Pcm(b"\x00" * 30, 16000, width=3)  # no such sample width

    srv = await verba_server(backends=[BadAudio(name="bad")])
    plain = await speak(srv.uri, "Hello.")
    assert [e.code for e in plain.errors] == ["internal-error"]
    streamed = await speak_streaming(srv.uri, ["Hello. "])
    assert streamed.types[-1] == "synthesize-stopped" and streamed.errors


async def test_whitespace_chunks_fall_back_to_the_compatibility_text(espeak_server):
    reply = await speak_streaming(espeak_server.uri, [" ", "\n"])
    assert reply.seconds == 0  # nothing was said in the stream, and no copy came
    async with AsyncClient.from_uri(espeak_server.uri) as client:
        await client.write_event(SynthesizeStart().event())
        await client.write_event(SynthesizeChunk(text=" ").event())
        await client.write_event(Synthesize(text="Hello there.").event())
        await client.write_event(SynthesizeStop().event())
        from tests.client import Reply

        done = await read_until(client, Reply(), "synthesize-stopped")
        assert done.seconds > 0.5


async def test_run_on_text_is_cut_at_max_sentence_chars(verba_server):
    tone = ToneBackend()
    srv = await verba_server("--max-sentence-chars", "60", backends=[tone])
    text = "word " * 60
    reply = await speak(srv.uri, text)
    assert reply.errors == []
    assert len(tone.spoken) > 4 and all(len(s) <= 61 for s in tone.spoken)
    assert " ".join(s.rstrip(",") for s in tone.spoken).split() == text.split()
