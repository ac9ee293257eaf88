"""The HTTP routes: OpenAI's /v1 (speech, models, voices), /health, /metrics, and the
status the page polls (/api/status)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict

from aiohttp import web

from .. import __version__
from ..app import App, advertised_languages
from .errors import ApiError
from .speech import OPENAI_VOICES, SpeechRequest, resolve_voice, speak

MODELS = ("wyoming-verba", "tts-1", "tts-1-hd", "gpt-4o-mini-tts")  # any name is accepted


class HttpState:
    """What the HTTP front counts itself: speech requests in progress."""

    def __init__(self) -> None:
        self.active = 0
        self.started = time.time()


APP_KEY = web.AppKey("verba_app", App)
STATE_KEY = web.AppKey("verba_http_state", HttpState)


def _app(request: web.Request) -> App:
    return request.app[APP_KEY]


async def speech(request: web.Request) -> web.StreamResponse:
    app = _app(request)
    settings = app.settings
    body = await read_json(request, settings.http_read_timeout)
    req = SpeechRequest.parse(body, settings.max_text_chars)
    choice = resolve_voice(app, req.voice)
    if not app.chain.live:
        raise ApiError(503, "no backend is ready yet", code="not_ready",
                       retry_after=max(settings.startup_wait, 1.0))
    state = request.app[STATE_KEY]
    if state.active >= settings.http_max_requests:
        raise ApiError(429, f"busy: {state.active} speech requests in progress "
                       f"(--http-max-requests)", code="busy", retry_after=1.0)
    state.active += 1
    try:
        return await speak(request, app, req, choice)
    finally:
        state.active -= 1


def body_limit(max_text_chars: int) -> int:
    """The largest request body: the longest text, every character escaped in JSON
    (a \\uXXXX surrogate pair is 12 bytes per character), and room for the other fields."""
    return 12 * max_text_chars + 64 * 1024


async def read_json(request: web.Request, limit_s: float) -> object:
    """The body as JSON: checked for its type and size before it is read, and read within
    `limit_s` seconds (a slow upload gets 408, not a slot held forever)."""
    if request.content_type != "application/json":
        raise ApiError(415, f"send the body as application/json, not "
                       f"{request.content_type or 'nothing'}", code="unsupported_media_type")
    limit = request.app[APP_KEY].settings.max_text_chars
    if request.content_length is not None and request.content_length > body_limit(limit):
        raise ApiError(413, f"the request body of {request.content_length} bytes is too large",
                       code="request_too_large")
    try:
        async with asyncio.timeout(limit_s):
            raw = await request.read()
    except TimeoutError:
        raise ApiError(408, f"the request body did not arrive within {limit_s:g} s",
                       code="request_timeout") from None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}", code="invalid_json") from None


async def models(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [_model(m) for m in MODELS]})


async def model(request: web.Request) -> web.Response:
    name = request.match_info["model"]
    if name not in MODELS:
        raise ApiError(404, f"the model {name!r} does not exist", param="model",
                       code="model_not_found")
    return web.json_response(_model(name))


def _model(name: str) -> dict:
    return {"id": name, "object": "model", "created": 0, "owned_by": "wyoming-verba"}


async def voices(request: web.Request) -> web.Response:
    """Every voice with its languages, backend and `installed`, and what OpenAI's voice
    names speak here."""
    app = _app(request)
    listed = []
    for backend, voice in app.chain.voices():
        languages = advertised_languages(voice.languages) or list(voice.languages)
        listed.append({
            "id": voice.name, "name": voice.name, "object": "audio.voice",
            "description": voice.description, "language": languages[0] if languages else "",
            "languages": languages, "backend": backend.name, "installed": voice.installed,
            "speakers": list(voice.speakers),
        })
    mapped = dict(app.settings.http_voices)
    default = app.settings.voice or "(each backend's default)"
    aliases = {name: mapped.get(name, default) for name in OPENAI_VOICES}
    aliases.update(mapped)
    return web.json_response({"object": "list", "data": listed, "openai_voices": aliases})


async def health(request: web.Request) -> web.Response:
    """Liveness (this answers) and readiness (a backend can speak), with each backend's
    state; 503 while nothing can speak."""
    app = _app(request)
    states = app.backend_states()
    ready = bool(app.chain.live)
    up = [s for s in states if s.state == "up"]
    status = "unavailable" if not ready else "ok" if len(up) == len(states) else "degraded"
    return web.json_response(
        {"status": status, "live": True, "ready": ready,
         "backends": [{"name": s.name, "state": s.state} for s in states]},
        status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics on the HTTP port too, when --metrics-port turned them on."""
    registry = getattr(_app(request).metrics, "registry", None)
    if registry is None or not _app(request).metrics.enabled:
        raise ApiError(404, "metrics are off: start with --metrics-port", code="metrics_off")
    import prometheus_client

    return web.Response(body=prometheus_client.generate_latest(registry),
                        headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST})


async def status(request: web.Request) -> web.Response:
    """What the page shows: backends, the last requests, the first-audio histogram."""
    app = _app(request)
    history = app.metrics.history
    state = request.app[STATE_KEY]
    return web.json_response({
        "version": __version__,
        "uptime_s": round(time.time() - state.started, 1),
        "output_rate": app.output_format.rate,  # Wyoming's
        "http_output_rate": app.http_format.rate,
        "http_active": state.active,
        "backends": [asdict(s) for s in app.backend_states()],
        "recent": list(reversed(history.recent)),
        "histogram": {"buckets_ms": [round(b * 1000) for b in history.buckets],
                      "counts": list(history.counts)},
    })


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/v1/audio/speech", speech)
    router.add_get("/v1/models", models)
    router.add_get("/v1/models/{model}", model)
    router.add_get("/v1/audio/voices", voices)
    router.add_get("/health", health)
    router.add_get("/metrics", metrics)
    router.add_get("/api/status", status)
