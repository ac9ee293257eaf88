"""The HTTP listener beside the Wyoming one: bound early (a port in use fails before any
backend loads), serving once the App exists, stopped with the rest."""

from __future__ import annotations

import logging
import socket

from aiohttp import web

from ..app import App
from ..settings import Settings
from . import api, page
from .errors import openai_errors
from .security import api_key_check, warn_if_open

_LOGGER = logging.getLogger(__name__)
LINGER_S = 1.0


class HttpServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port: int | None = None
        self._sock: socket.socket | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = self.settings.http_host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/"

    def bind(self) -> None:
        """Take the port now; connections wait in the backlog until `start`."""
        settings = self.settings
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                settings.http_host, settings.http_port, type=socket.SOCK_STREAM,
                flags=socket.AI_PASSIVE)[0]
            sock = socket.socket(family, kind, proto)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError:
                sock.close()
                raise
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise OSError(exc.errno, f"cannot listen on --http-host {settings.http_host} "
                          f"--http-port {settings.http_port}: {reason}") from exc
        sock.setblocking(False)
        self._sock = sock
        self.port = sock.getsockname()[1]

    async def start(self, app: App) -> None:
        if self._sock is None:
            self.bind()
        assert self._sock is not None
        settings = self.settings
        web_app = web.Application(
            client_max_size=api.body_limit(settings.max_text_chars),
            middlewares=[openai_errors, api_key_check(settings.http_api_key)])
        web_app[api.APP_KEY] = app
        web_app[api.STATE_KEY] = api.HttpState()
        api.add_routes(web_app.router)
        page.add_routes(web_app.router)
        # A client gets --http-read-timeout for its headers (aiohttp's keep-alive timer
        # runs from the connection's start) and its body (read_json); after an answer to
        # a body not read (408, 413) the rest of it is drained for one second at most,
        # so the client can read the answer, then the connection closes. A client that
        # goes away cancels its handler, and with it its reply.
        self._runner = web.AppRunner(
            web_app, handle_signals=False, handler_cancellation=True,
            shutdown_timeout=settings.shutdown_timeout,
            keepalive_timeout=settings.http_read_timeout, lingering_time=LINGER_S)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()
        warn_if_open(settings.http_host, self.port or 0, settings.http_api_key)
        _LOGGER.info("OpenAI-compatible speech API and voice page on %s", self.url)

    async def stop(self) -> None:
        """Stop accepting; requests in progress get --shutdown-timeout to finish."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        elif self._sock is not None:
            self._sock.close()
        self._sock = None
