"""The HTTP API's errors: OpenAI-style JSON with the right status, so OpenAI's client
raises its usual exception types; the API key and Home Assistant ingress; bad JSON,
wrong content types, huge bodies, slow uploads and vanishing clients, none of which
disturbs another client or Wyoming."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import openai
import pytest

from tests.client import speak
from tests.fakes.tone_backend import Faults, ToneBackend
from tests.http_client import base_url, openai_client, sse_events
from wyoming_verba.backends.base import BackendUnavailable
from wyoming_verba.http import api, security

SPEECH = {"model": "tts-1", "voice": "alloy", "input": "The door is open."}


async def tone_server(verba_server, *argv: str, **faults):
    backend = ToneBackend(faults=Faults(**faults))
    srv = await verba_server("--http-port", "0", *argv, backends=[backend])
    return srv, backend


async def post(srv, body: bytes | str, headers: dict | None = None, path="/v1/audio/speech",
               **kw) -> tuple[int, dict, dict]:
    async with aiohttp.ClientSession(**kw) as session, session.post(
            base_url(srv) + path, data=body,
            headers={"Content-Type": "application/json", **(headers or {})}) as response:
        return response.status, dict(response.headers), await response.json()


async def create(client: openai.AsyncOpenAI, **fields):
    return await client.audio.speech.create(**{**SPEECH, "response_format": "pcm", **fields})


@pytest.mark.parametrize(("fields", "param"), [
    ({"speed": 10}, "speed"),
    ({"speed": True}, "speed"),
    ({"response_format": "ogg"}, "response_format"),
    ({"stream_format": "chunks"}, "stream_format"),
    ({"input": "   "}, "input"),
    ({"voice": ""}, "voice"),
    ({"model": ""}, "model"),
    ({"instructions": 5}, "instructions"),
])
async def test_a_bad_field_is_a_400_that_names_it(verba_server, fields, param):
    srv, backend = await tone_server(verba_server)
    async with openai_client(srv) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await create(client, **fields)
    assert caught.value.status_code == 400
    assert caught.value.param == param and param in caught.value.message
    assert caught.value.type == "invalid_request_error"
    assert backend.attempts == []


async def test_an_unknown_voice_is_a_404(verba_server):
    srv, _ = await tone_server(verba_server)
    async with openai_client(srv) as client:
        with pytest.raises(openai.NotFoundError) as caught:
            await create(client, voice="nobody")
    assert caught.value.code == "voice_not_found" and caught.value.param == "voice"
    assert "/v1/audio/voices" in caught.value.message


async def test_text_over_the_limit_is_a_413(verba_server):
    srv, backend = await tone_server(verba_server, "--max-text-chars", "40")
    async with openai_client(srv) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await create(client, input="word " * 9)
    assert caught.value.status_code == 413 and caught.value.param == "input"
    assert backend.attempts == []


async def test_busy_is_a_429_with_retry_after(verba_server):
    """At --http-max-requests, the next request is refused at once, not queued."""
    srv, _ = await tone_server(verba_server, "--http-max-requests", "1", chunk_delay=0.05)
    long_text = "and so on " * 20
    async with openai_client(srv) as client:
        async with client.audio.speech.with_streaming_response.create(
                **{**SPEECH, "input": long_text}, response_format="pcm"):
            with pytest.raises(openai.RateLimitError) as caught:
                await create(client)
        assert caught.value.response.headers["retry-after"] == "1"
        # Hanging up frees the slot as soon as the server notices.
        state = srv.server.http._runner.app[api.STATE_KEY]  # type: ignore[union-attr]
        for _ in range(250):
            if state.active == 0:
                break
            await asyncio.sleep(0.02)
        assert (await create(client)).content


async def test_every_backend_failing_is_a_503_with_retry_after(verba_server):
    srv, backend = await tone_server(verba_server, "--cooldown", "20", fail_before_audio=10)
    async with openai_client(srv) as client:
        with pytest.raises(openai.InternalServerError) as caught:
            await create(client)
    assert caught.value.status_code == 503 and caught.value.code == "synthesis_failed"
    assert "injected failure" in caught.value.message
    retry = int(caught.value.response.headers["retry-after"])
    assert 1 <= retry <= 20
    assert srv.app.metrics.history.recent[-1]["outcome"] == "error"


class NeverStarts(ToneBackend):
    async def start(self) -> None:
        raise BackendUnavailable("the model is not there")


async def test_no_backend_ready_is_a_503_and_health_says_so(verba_server):
    srv = await verba_server("--http-port", "0", "--startup-wait", "2",
                             backends=[NeverStarts()])
    async with openai_client(srv) as client:
        with pytest.raises(openai.InternalServerError) as caught:
            await create(client)
        assert caught.value.status_code == 503 and caught.value.code == "not_ready"
        with pytest.raises(openai.InternalServerError):
            await client.get(base_url(srv) + "/health", cast_to=object)
    async with aiohttp.ClientSession() as session, session.get(
            base_url(srv) + "/health") as response:
        assert response.status == 503
        assert await response.json() == {
            "status": "unavailable", "live": True, "ready": False,
            "backends": [{"name": "tone", "state": "down"}]}


# --- the API key and ingress -----------------------------------------------------------


async def test_api_key(verba_server):
    srv, _ = await tone_server(verba_server, "--http-api-key", "s3cret")
    async with openai_client(srv, api_key="wrong") as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            await create(client)
        assert caught.value.code == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            await client.models.list()
    async with openai_client(srv, api_key="s3cret") as client:
        assert (await create(client)).content
        assert [m.id async for m in client.models.list()]
    status, _, body = await post(srv, "{}", path="/v1/audio/speech")
    assert status == 401 and "missing API key" in body["error"]["message"]
    async with aiohttp.ClientSession() as session:  # the page's shell and liveness stay open
        for path in ("/", "/health", "/static/page.js"):
            async with session.get(base_url(srv) + path) as response:
                assert response.status == 200, path
        async with session.get(base_url(srv) + "/api/status") as response:
            assert response.status == 401


async def test_ingress_requests_from_the_supervisor_are_trusted(verba_server, monkeypatch):
    """The Supervisor's proxy (its address, with X-Ingress-Path) needs no key; the same
    header from anywhere else does."""
    monkeypatch.setattr(security, "SUPERVISOR_ADDRESS", "127.0.0.2")
    srv, _ = await tone_server(verba_server, "--http-api-key", "s3cret")
    ingress = {"X-Ingress-Path": "/api/hassio_ingress/abc"}
    body = '{"model": "tts-1", "voice": "alloy", "input": "Hi.", "response_format": "pcm"}'

    async def status_from(address: str, headers: dict) -> int:
        connector = aiohttp.TCPConnector(local_addr=(address, 0))
        async with aiohttp.ClientSession(connector=connector) as session, session.post(
                base_url(srv) + "/v1/audio/speech", data=body,
                headers={"Content-Type": "application/json", **headers}) as response:
            await response.read()
            return response.status

    assert await status_from("127.0.0.2", ingress) == 200
    assert await status_from("127.0.0.2", {}) == 401
    assert await status_from("127.0.0.1", ingress) == 401


@pytest.mark.parametrize(("host", "key", "warned"), [
    ("0.0.0.0", None, True), ("0.0.0.0", "k", False), ("127.0.0.1", None, False),
])
async def test_warning_when_open_beyond_loopback(verba_server, caplog, host, key, warned):
    argv = ["--http-host", host] + (["--http-api-key", key] if key else [])
    with caplog.at_level(logging.WARNING, logger="wyoming_verba.http.security"):
        await tone_server(verba_server, *argv)
    assert ("has no --http-api-key" in caplog.text) is warned


# --- malformed and hostile requests -------------------------------------------------------


async def test_bad_json_and_wrong_content_type(verba_server):
    srv, _ = await tone_server(verba_server)
    status, _, body = await post(srv, "{not json")
    assert status == 400 and body["error"]["code"] == "invalid_json"
    status, _, body = await post(srv, "[1, 2]")
    assert status == 400 and "JSON object" in body["error"]["message"]
    status, _, body = await post(srv, '{"input": "hi"}', {"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in body["error"]["message"]


async def test_unknown_routes_and_methods_answer_json(verba_server):
    srv, _ = await tone_server(verba_server)
    async with aiohttp.ClientSession() as session:
        async with session.get(base_url(srv) + "/v1/nothing") as response:
            assert response.status == 404
            assert (await response.json())["error"]["type"] == "invalid_request_error"
        async with session.get(base_url(srv) + "/v1/audio/speech") as response:
            assert response.status == 405 and "GET" in (await response.json())["error"]["message"]
        async with session.get(base_url(srv) + "/metrics") as response:
            assert response.status == 404  # metrics are off
            assert "--metrics-port" in (await response.json())["error"]["message"]


async def test_huge_bodies_are_refused_without_reading_them(verba_server):
    srv, backend = await tone_server(verba_server, "--max-text-chars", "100")
    huge = b'{"input": "' + b"a" * 3_000_000 + b'"}'
    status, _, body = await post(srv, huge)  # with Content-Length: refused up front
    assert status == 413 and body["error"]["code"] == "request_too_large"

    async def chunks():
        for _ in range(100):
            yield b"a" * 30_000

    status, _, body = await post(srv, chunks())  # chunked, no length: cut off at the limit
    assert status == 413
    assert backend.attempts == []


async def raw_connection(srv) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", srv.server.http.port)


async def test_a_slow_upload_gets_408_and_disturbs_nobody(verba_server):
    """A client that sends half a body and stalls gets 408 after --http-read-timeout;
    meanwhile HTTP and Wyoming clients are served."""
    srv, _ = await tone_server(verba_server, "--http-read-timeout", "1")
    reader, writer = await raw_connection(srv)
    writer.write(b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                 b"\r\nContent-Length: 200\r\n\r\n{\"input\": \"hel")
    await writer.drain()
    async with openai_client(srv) as client:
        assert (await create(client)).content
    assert not (await speak(srv.uri, "Still here.")).errors
    answer = await asyncio.wait_for(reader.read(), 10)
    assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within 1 s" in answer
    writer.close()


async def test_a_connection_that_never_finishes_its_headers_is_closed(verba_server):
    srv, _ = await tone_server(verba_server, "--http-read-timeout", "1")
    reader, writer = await raw_connection(srv)
    writer.write(b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Ty")
    await writer.drain()
    assert not (await speak(srv.uri, "Still here.")).errors
    assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the server
    writer.close()


async def test_a_client_that_goes_away_cancels_its_reply(verba_server):
    srv, backend = await tone_server(verba_server, chunk_delay=0.05)
    text = "one two three four five six seven eight nine ten eleven twelve thirteen."
    async with openai_client(srv) as client:
        async with client.audio.speech.with_streaming_response.create(
                **{**SPEECH, "input": text}, response_format="pcm") as response:
            request_id = response.headers["x-request-id"]
            async for _piece in response.iter_bytes():
                break  # hang up after the first audio
    for _ in range(200):
        records = [r for r in srv.app.metrics.history.recent if r["id"] == request_id]
        if records:
            break
        await asyncio.sleep(0.02)
    assert records and records[0]["outcome"] == "cancelled"
    assert backend.spoken == []  # the sentence was not finished for nobody


async def test_an_error_after_audio_cuts_the_response_off(verba_server):
    """Once audio went out with a 200, a later failure must not pass for a complete
    reply: the response ends without its last chunk, and OpenAI's client raises."""
    backend = ToneBackend(faults=Faults(fail_after_words=2))
    srv = await verba_server("--http-port", "0", backends=[backend])
    text = "one two three four. five six seven."
    async with openai_client(srv) as client:
        with pytest.raises(openai.APIConnectionError):
            await create(client, input=text)
        backend.faults.fail_after_words = 2  # with SSE: an error event ends the stream
        response = await create(client, input=text, stream_format="sse")
    events = sse_events(response.content)
    assert events[0]["type"] == "speech.audio.delta"
    assert events[-1]["type"] == "error" and events[-1]["error"]["code"] == "synthesis_failed"
    assert "speech.audio.done" not in [e["type"] for e in events]
    for _ in range(100):  # the request is recorded once its reply task has ended
        if len(srv.app.metrics.history.recent) == 2:
            break
        await asyncio.sleep(0.02)
    assert [r["outcome"] for r in srv.app.metrics.history.recent] == ["error", "error"]
