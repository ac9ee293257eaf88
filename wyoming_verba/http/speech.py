"""POST /v1/audio/speech: one request's fields checked as OpenAI checks them, its voice
resolved, and its reply spoken by `reply.Reply` (the same sentence splitter, chain,
failover, cache and metrics as a Wyoming request) into a streamed response."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..app import App
from ..backends.base import BackendError
from ..backends.chain import VoiceChoice
from ..reply import Reply
from .encode import CONTENT_TYPES, FORMATS, Encoder, encoder_for
from .errors import ApiError
from .outbox import HttpOutbox, Taken
from .speed import TimeStretch

_LOGGER = logging.getLogger(__name__)

# OpenAI's built-in voice names: each speaks the voice --http-voice maps it to, else the
# server's default voice, so a client written for OpenAI works unchanged.
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage",
                 "shimmer", "verse", "marin", "cedar")
SPEED_RANGE = (0.25, 4.0)
PIECE_S = 0.1  # seconds of PCM encoded at a time, each written as soon as it is ready


@dataclass(frozen=True)
class SpeechRequest:
    input: str
    model: str
    voice: str
    response_format: str = "mp3"
    speed: float = 1.0
    stream_format: str = "audio"

    @classmethod
    def parse(cls, body: Any, max_chars: int) -> SpeechRequest:
        """Check every field; ApiError(400) names the first bad one."""
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object", code="invalid_json")
        model = _string(body, "model")
        voice_field = body.get("voice")
        if isinstance(voice_field, dict):  # OpenAI's custom voice reference {"id": ...}
            voice_field = voice_field.get("id")
        if not isinstance(voice_field, str) or not voice_field.strip():
            raise _bad("voice", "'voice' must be a voice name (GET /v1/audio/voices lists them)")
        text = body.get("input")
        if not isinstance(text, str):
            raise _bad("input", "'input' must be a string")
        if not text.strip():
            raise _bad("input", "'input' is empty: there is nothing to say")
        if len(text) > max_chars:
            raise ApiError(413, f"'input' has {len(text)} characters; the limit is {max_chars}",
                           param="input", code="text_too_long")
        response_format = body.get("response_format", "mp3")
        if response_format not in FORMATS:
            raise _bad("response_format",
                       f"'response_format' must be one of {', '.join(FORMATS)}")
        speed = body.get("speed", 1.0)
        lo, hi = SPEED_RANGE
        if isinstance(speed, bool) or not isinstance(speed, int | float) or not lo <= speed <= hi:
            raise _bad("speed", f"'speed' must be a number from {lo} to {hi}")
        stream_format = body.get("stream_format", "audio")
        if stream_format not in ("audio", "sse"):
            raise _bad("stream_format", "'stream_format' must be 'audio' or 'sse'")
        instructions = body.get("instructions")
        if instructions is not None and not isinstance(instructions, str):
            raise _bad("instructions", "'instructions' must be a string")  # accepted, unused
        return cls(text, model, voice_field.strip(), response_format, float(speed),
                   stream_format)


def _bad(param: str, message: str) -> ApiError:
    return ApiError(400, message, param=param, code="invalid_value")


def _string(body: dict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"'{name}' is required and must be a non-empty string",
                       param=name, code="missing_required_parameter" if value is None
                       else "invalid_value")
    return value


def resolve_voice(app: App, voice: str) -> VoiceChoice:
    """An OpenAI voice name through --http-voice (else the default voice, as a Wyoming
    request without a voice gets it), any other name as the server's own voice. A voice
    named (or mapped) is pinned: its own backend speaks it, the others stand in only
    while it fails, so a client hears the voice it asked for. ApiError(404) for an
    unknown one."""
    settings = app.settings
    mapped = dict(settings.http_voices).get(voice)
    if mapped is None and voice.lower() in OPENAI_VOICES:
        name, speaker, pinned = settings.voice, settings.speaker, False
    else:
        name, speaker, pinned = mapped or voice, None, True
    try:
        choice = app.chain.resolve(name, speaker, None)
        return dataclasses.replace(choice, pinned=pinned and choice.owner is not None)
    except BackendError as exc:
        message = str(exc).replace("send describe", "GET /v1/audio/voices")
        raise ApiError(404, message, param="voice", code="voice_not_found") from None


def retry_after(app: App) -> float:
    """When trying again makes sense: when the first backend's cool-down ends."""
    cooling = [s.retry_in for s in app.backend_states() if s.state == "cooling"]
    return min(cooling) if cooling else 1.0


async def speak(request: web.Request, app: App, req: SpeechRequest,
                choice: VoiceChoice) -> web.StreamResponse:
    """Speak `req` into a streamed response: nothing is committed until the first audio
    (or the end), so a reply whose first sentence no backend could speak is a 503 with
    Retry-After instead of an empty 200. An error after audio has gone out cuts the
    response off (no terminating chunk) or, with SSE, sends an `error` event."""
    settings = app.settings
    outbox = HttpOutbox(settings.write_timeout)
    reply = Reply(app, outbox, choice, streaming=False, ssml=False, previous=None,
                  fmt=app.http_format)
    reply.stats.front = "http"
    reply.feed(req.input)
    reply.end_text()
    fmt = app.http_format
    audio = ResponseAudio(encoder_for(req.response_format, fmt),
                          TimeStretch(req.speed, fmt.rate) if req.speed != 1.0 else None,
                          piece_bytes=int(PIECE_S * fmt.bytes_per_second))
    sse = req.stream_format == "sse"
    response: web.StreamResponse | None = None
    ended = False  # the reply has said its last: let it finish and record its outcome
    try:
        while True:
            taken = await outbox.take()
            ended = taken.ended
            if response is None:
                if taken.error is not None and not taken.audio:
                    raise _reply_error(app, taken)
                response = web.StreamResponse(headers={
                    "Content-Type": "text/event-stream" if sse
                    else CONTENT_TYPES[req.response_format],
                    "Cache-Control": "no-cache",
                    "X-Request-Id": reply.stats.request_id,
                })
                response.enable_chunked_encoding()
                await response.prepare(request)
            async for data in audio.pieces(taken):
                if sse:
                    await response.write(_event({"type": "speech.audio.delta",
                                                 "audio": base64.b64encode(data).decode()}))
                else:
                    await response.write(data)
            outbox.written()
            if taken.error is not None:  # mid-stream: the status is already 200
                _LOGGER.warning("request %s: cut off: %s", reply.stats.request_id,
                                taken.error.text)
                if not sse:
                    response.force_close()
                    assert request.transport is not None
                    request.transport.abort()  # no last chunk: the client sees it failed
                    return response
                await response.write(_event({"type": "error", "error": {
                    "message": taken.error.text, "type": "server_error",
                    "code": (taken.error.code or "").replace("-", "_") or None}}))
                break
            if taken.ended:
                if sse:
                    await response.write(_event({"type": "speech.audio.done", "usage": {
                        "input_tokens": 0, "output_tokens": 0, "total_tokens": 0}}))
                break
        await response.write_eof()
        return response
    finally:
        if ended:  # it only has its bookkeeping left (outcome, metrics)
            outbox.written()
            await asyncio.wait({reply.task}, timeout=settings.write_timeout)
        outbox.close()
        if not reply.task.done():  # the client went away (or a bug): stop speaking
            reply.cancel()
        await asyncio.wait({reply.task})
        await audio.close()


def _reply_error(app: App, taken: Taken) -> ApiError:
    assert taken.error is not None
    code = (taken.error.code or "synthesis-failed").replace("-", "_")
    if code == "internal_error":
        return ApiError(500, taken.error.text, code=code)
    return ApiError(503, taken.error.text, code=code, retry_after=retry_after(app))


class ResponseAudio:
    """The reply's PCM → the response's bytes. Copying (pcm, wav) happens inline; encoding
    and stretching run in a worker thread, in pieces of at most `piece_bytes` of PCM, each
    written as soon as it is ready, so a long first take does not hold the first bytes
    back. The codec opens in the background while the first sentence is synthesized."""

    def __init__(self, encoder: Encoder, stretch: TimeStretch | None, piece_bytes: int) -> None:
        self.encoder = encoder
        self.stretch = stretch
        self.piece_bytes = max(piece_bytes - piece_bytes % 2, 2)
        self.threaded = encoder.cpu_bound or stretch is not None
        self._header = b""
        self._opening: asyncio.Task[bytes] | None = (
            asyncio.create_task(asyncio.to_thread(encoder.open)) if self.threaded else None)

    async def pieces(self, taken: Taken) -> AsyncGenerator[bytes, None]:
        if not self.threaded:
            data = self.encoder.encode(taken.audio)
            data += self.encoder.finish() if taken.ended else b""
            if data:
                yield data
            return
        if self._opening is not None:  # the header goes out with the first audio
            self._header, self._opening = await self._opening, None
        pcm = taken.audio
        for start in range(0, max(len(pcm), 1), self.piece_bytes):
            last = taken.ended and start + self.piece_bytes >= len(pcm)
            if not pcm and not last:
                break
            data = await asyncio.to_thread(self._work, pcm[start:start + self.piece_bytes],
                                           last)
            if data:
                data, self._header = self._header + data, b""
                yield data

    def _work(self, pcm: bytes, last: bool) -> bytes:
        if self.stretch is not None:
            pcm = self.stretch.feed(pcm) + (self.stretch.flush() if last else b"")
        return self.encoder.encode(pcm) + (self.encoder.finish() if last else b"")

    async def close(self) -> None:
        if self._opening is not None:  # never used: let the worker finish, quietly
            with contextlib.suppress(Exception):
                await self._opening


def _event(data: dict) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"
