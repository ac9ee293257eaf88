"""The OpenAI-compatible API with OpenAI's own client against a real server on loopback:
every response_format streamed and decoded back to the audio a Wyoming client gets for
the same text, SSE, speed, the listing endpoints, and many clients at once beside
Wyoming traffic."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.client import speak
from tests.fakes.tone_backend import Faults, ToneBackend, dominant_frequency
from tests.http_client import base_url, decode, openai_client, sse_audio, sse_events
from wyoming_verba.backends.base import Voice
from wyoming_verba.http.encode import FORMATS

TEXT = "The kitchen lights are on. The front door is locked."
TONE_HZ = 440.0
# Codec framing: what a lossy encoder may add (priming, padding to whole frames).
SLACK_S = {"mp3": 0.1, "aac": 0.1, "opus": 0.03, "flac": 0.0, "wav": 0.0, "pcm": 0.0}


def tone_backend(**faults) -> ToneBackend:
    return ToneBackend(frequency=TONE_HZ, faults=Faults(**faults))


async def tone_server(verba_server, *argv: str, **faults):
    backend = tone_backend(**faults)
    # Loudness off: a voice's first sentence is levelled from a guess until the tracker has
    # heard it, so the same text would not give the same samples twice.
    srv = await verba_server("--http-port", "0", "--loudness", "off", *argv,
                             backends=[backend])
    return srv, backend


async def stream(client, history, fmt: str, text: str = TEXT) -> tuple[bytes, str, bool]:
    """The body, the request id, and whether its first bytes came before the server
    had finished the reply (its request not yet in the server's history)."""
    body = bytearray()
    async with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=text, response_format=fmt
    ) as response:
        request_id = response.headers["x-request-id"]
        early = None
        async for piece in response.iter_bytes():
            if early is None and piece:
                early = all(r["id"] != request_id for r in history.recent)
            body += piece
    return bytes(body), request_id, bool(early)


@pytest.mark.parametrize("fmt", FORMATS)
async def test_every_format_streams_the_same_audio_as_wyoming(verba_server, fmt):
    """Each format arrives in pieces while the reply is still being spoken, and decodes
    to the PCM a Wyoming client gets for the same text (exactly for the lossless ones)."""
    srv, _backend = await tone_server(verba_server, chunk_delay=0.01)
    expected = (await speak(srv.uri, TEXT)).samples
    async with openai_client(srv) as client:
        body, request_id, early = await stream(client, srv.app.metrics.history, fmt)
    assert early, "the first bytes came only after the whole reply was spoken"
    samples, rate = decode(body, fmt)
    if fmt in ("pcm", "wav", "flac"):
        assert rate == 24000 and np.array_equal(samples, expected)
    else:
        seconds, wanted = len(samples) / rate, len(expected) / 24000
        assert wanted - 0.001 <= seconds <= wanted + SLACK_S[fmt], (seconds, wanted)
        assert abs(dominant_frequency(samples, rate) - TONE_HZ) < 5
    record = next(r for r in srv.app.metrics.history.recent if r["id"] == request_id)
    assert record["front"] == "http" and record["outcome"] == "ok"
    assert record["backends"] == ["tone"]


async def test_wav_header_is_the_streams_format(verba_server):
    srv, _ = await tone_server(verba_server, "--output-rate", "16000")
    async with openai_client(srv) as client:
        response = await client.audio.speech.create(model="tts-1", voice="alloy",
                                                    input="Hello.", response_format="wav")
    data = response.content
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt "
    assert int.from_bytes(data[24:28], "little") == 16000  # sample rate
    assert int.from_bytes(data[34:36], "little") == 16  # bits per sample
    assert response.response.headers["content-type"] == "audio/wav"


async def test_raw_pcm_is_openais_24_khz_whatever_wyoming_sends(verba_server):
    """`--output-rate auto` sends Wyoming clients the backend's own 16 kHz, but OpenAI's
    clients take raw `pcm` for 24 kHz: the API keeps that unless the rate is set."""
    backend = ToneBackend(frequency=TONE_HZ, rate=16000, knows_rate=True)
    srv = await verba_server("--http-port", "0", backends=[backend])
    assert (await speak(srv.uri, TEXT)).rate == 16000
    async with openai_client(srv) as client:
        pcm = await client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT,
                                               response_format="pcm")
        wav = await client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT,
                                               response_format="wav")
    samples = np.frombuffer(pcm.content, "<i2")
    assert abs(dominant_frequency(samples, 24000) - TONE_HZ) < 5
    assert int.from_bytes(wav.content[24:28], "little") == 24000


async def test_sse_carries_the_pcm_then_done(verba_server):
    srv, _ = await tone_server(verba_server)
    async with openai_client(srv) as client:
        pcm = (await client.audio.speech.create(model="gpt-4o-mini-tts", voice="alloy",
                                                input=TEXT, response_format="pcm")).content
        sse = await client.audio.speech.create(model="gpt-4o-mini-tts", voice="alloy",
                                               input=TEXT, response_format="pcm",
                                               stream_format="sse")
    assert sse.response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(sse.content)
    assert [e["type"] for e in events][-1] == "speech.audio.done"
    assert set(events[-1]["usage"]) == {"input_tokens", "output_tokens", "total_tokens"}
    assert len(events) > 2  # streamed in several deltas
    assert sse_audio(events) == pcm


async def test_sse_with_mp3_decodes(verba_server):
    srv, _ = await tone_server(verba_server)
    async with openai_client(srv) as client:
        sse = await client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT,
                                               response_format="mp3", stream_format="sse")
    samples, rate = decode(sse_audio(sse_events(sse.content)), "mp3")
    assert abs(dominant_frequency(samples, rate) - TONE_HZ) < 5


@pytest.mark.parametrize("speed", [0.5, 2.0])
async def test_speed_changes_the_length_not_the_pitch(verba_server, speed):
    srv, _ = await tone_server(verba_server)
    async with openai_client(srv) as client:
        normal = (await client.audio.speech.create(
            model="tts-1", voice="alloy", input=TEXT, response_format="pcm")).content
        changed = (await client.audio.speech.create(
            model="tts-1", voice="alloy", input=TEXT, response_format="pcm",
            speed=speed)).content
    samples, _ = decode(changed, "pcm")
    assert len(samples) == round(len(normal) / 2 / speed)
    assert abs(dominant_frequency(samples, 24000) - TONE_HZ) < 5


async def test_openai_voice_names_map_to_configured_voices(verba_server):
    """`--http-voice echo=tone-de` speaks tone-de for "echo"; unmapped OpenAI names
    speak the default; the server's own names work directly."""
    srv, backend = await tone_server(verba_server, "--http-voice", "echo=tone-de")
    async with openai_client(srv) as client:
        for voice in ("echo", "nova", "tone-de"):
            await client.audio.speech.create(model="tts-1", voice=voice, input="Hallo.",
                                             response_format="pcm")
        voices = await client.get("/audio/voices", cast_to=object)
    assert backend.attempts == ["Hallo."] * 3
    assert voices["openai_voices"]["echo"] == "tone-de"  # type: ignore[index]
    assert voices["openai_voices"]["nova"] == "(each backend's default)"  # type: ignore[index]


async def test_models_and_voices_list(verba_server):
    srv, _ = await tone_server(verba_server)
    async with openai_client(srv) as client:
        models = [m.id async for m in client.models.list()]
        assert "tts-1" in models and "wyoming-verba" in models
        assert (await client.models.retrieve("tts-1")).id == "tts-1"
        voices = await client.get("/audio/voices", cast_to=object)
    listed = {v["name"]: v for v in voices["data"]}  # type: ignore[index]
    assert listed["tone-de"] == {
        "id": "tone-de", "name": "tone-de", "object": "audio.voice",
        "description": "ein Testton", "language": "de-DE", "languages": ["de-DE"],
        "backend": "tone", "installed": True, "speakers": []}


async def test_health_and_status(verba_server):
    srv, _ = await tone_server(verba_server)
    async with openai_client(srv) as client:
        await client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.",
                                         response_format="pcm")
        health = await client.get(base_url(srv) + "/health", cast_to=object)
        status = await client.get(base_url(srv) + "/api/status", cast_to=object)
    assert health == {"status": "ok", "live": True, "ready": True,
                      "backends": [{"name": "tone", "state": "up"}]}
    assert status["backends"][0]["name"] == "tone"  # type: ignore[index]
    assert status["recent"][0]["front"] == "http"  # type: ignore[index]
    assert sum(status["histogram"]["counts"]) == 1  # type: ignore[index]


async def test_many_clients_at_once_beside_wyoming(verba_server):
    """Twenty OpenAI clients in every format and six Wyoming clients at the same time:
    every one gets its whole reply, in its own format."""
    srv, backend = await tone_server(verba_server, "--http-max-requests", "32",
                                     chunk_delay=0.002)
    expected = (await speak(srv.uri, TEXT)).samples
    client = openai_client(srv)

    async def http(i: int) -> None:
        fmt = FORMATS[i % len(FORMATS)]
        response = await client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT,
                                                    response_format=fmt)
        samples, rate = decode(response.content, fmt)
        if fmt in ("pcm", "wav", "flac"):
            assert np.array_equal(samples, expected), fmt
        else:
            assert len(samples) / rate >= len(expected) / 24000 - 0.001, fmt

    async def wyoming() -> None:
        reply = await speak(srv.uri, TEXT)
        assert np.array_equal(reply.samples, expected) and not reply.errors

    await asyncio.gather(*(http(i) for i in range(20)), *(wyoming() for _ in range(6)))
    await client.close()
    fronts = [r["front"] for r in srv.app.metrics.history.recent]
    assert fronts.count("http") == 20 and fronts.count("wyoming") == 7
    assert {r["outcome"] for r in srv.app.metrics.history.recent} == {"ok"}


async def test_a_named_voice_is_spoken_by_its_own_backend(verba_server):
    """Naming a voice means hearing it: the backend that owns it speaks, even behind
    another in the chain; an OpenAI name (not mapped) follows the chain as Wyoming does."""
    first = ToneBackend(name="first", frequency=440.0)
    second = ToneBackend(name="second", frequency=1000.0,
                         voices_=[Voice("second-en", ("en-US",), "the second voice")])
    srv = await verba_server("--http-port", "0", backends=[first, second])
    async with openai_client(srv) as client:
        for voice in ("second-en", "alloy"):
            await client.audio.speech.create(model="tts-1", voice=voice, input="Hello.",
                                             response_format="pcm")
    assert [r["backends"] for r in srv.app.metrics.history.recent] == [["second"], ["first"]]


async def test_prometheus_metrics_on_the_http_port(verba_server):
    import socket

    import aiohttp

    with socket.socket() as s:  # a free port for --metrics-port's own listener
        s.bind(("127.0.0.1", 0))
        metrics_port = s.getsockname()[1]
    srv, _ = await tone_server(verba_server, "--metrics-port", str(metrics_port))
    async with openai_client(srv) as client:
        await client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.",
                                         response_format="pcm")
    await speak(srv.uri, "Hi.")
    async with aiohttp.ClientSession() as session, session.get(
            base_url(srv) + "/metrics") as response:
        assert response.status == 200
        text = await response.text()
    assert 'verba_requests_total{mode="http",outcome="ok"} 1.0' in text
    assert 'verba_requests_total{mode="plain",outcome="ok"} 1.0' in text


async def test_health_is_degraded_while_a_backend_cools_down(verba_server):
    flaky = ToneBackend(name="flaky", faults=Faults(fail_before_audio=2))
    steady = ToneBackend(name="steady", voices_=[Voice("steady-en", ("en-US",), "")])
    srv = await verba_server("--http-port", "0", backends=[flaky, steady])
    for _ in range(2):
        assert not (await speak(srv.uri, "Hi.")).errors  # steady stands in
    async with openai_client(srv) as client:
        health = await client.get(base_url(srv) + "/health", cast_to=object)
    assert health["status"] == "degraded"  # type: ignore[index]
    assert health["backends"] == [{"name": "flaky", "state": "cooling"},  # type: ignore[index]
                                  {"name": "steady", "state": "up"}]


async def test_shutdown_lets_an_http_reply_finish(verba_server):
    """On SIGTERM (server.stop) a reply in progress gets --shutdown-timeout to finish,
    over HTTP as over Wyoming; new connections are refused."""
    srv, _ = await tone_server(verba_server, chunk_delay=0.02)
    expected = (await speak(srv.uri, TEXT)).samples
    async with openai_client(srv) as client, client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input=TEXT, response_format="pcm") as response:
        stopping = asyncio.create_task(srv.server.stop())
        body = b"".join([piece async for piece in response.iter_bytes()])
    await stopping
    assert np.array_equal(decode(body, "pcm")[0], expected)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", srv.server.http.port or 1)
