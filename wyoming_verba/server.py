"""The Wyoming listener from --uri: accepting connections within the limits, one
handler per connection, zeroconf, and a graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from urllib.parse import ParseResult, urlparse

from wyoming.error import Error
from wyoming.event import async_get_stdin, async_write_event

from .app import App
from .backends.base import Backend
from .backends.chain import BackendChain
from .backends.factory import build_backends
from .discovery import Zeroconf, advertised_host
from .handler import ConnectionHandler
from .http.server import HttpServer
from .metrics import Metrics
from .settings import Settings

_LOGGER = logging.getLogger(__name__)
KEEPALIVE_IDLE_S = 60  # seconds of silence before the kernel starts probing a client


class VerbaServer:
    def __init__(self, settings: Settings, backends: list[Backend] | None = None) -> None:
        self.settings = settings
        if backends is None:
            backends, self.skipped = build_backends(settings)
        else:
            self.skipped = {}
        self.chain = BackendChain(
            backends,
            sentence_timeout=settings.sentence_timeout,
            cooldown=settings.cooldown,
            voice_map=settings.voice_map,
        )
        self.app: App | None = None
        self.handlers: dict[asyncio.Task, ConnectionHandler] = {}
        self._server: asyncio.base_events.Server | None = None
        self._zeroconf: Zeroconf | None = None
        self._stdio_task: asyncio.Task | None = None
        self._reaper: asyncio.Task | None = None
        self.port: int | None = None
        # The OpenAI-compatible API and page (--http-port), on the same App.
        self.http = HttpServer(settings) if settings.http_port is not None else None

    @property
    def uri(self) -> str:
        parsed = urlparse(self.settings.uri)
        if parsed.scheme == "tcp":
            host = parsed.hostname or "0.0.0.0"
            return f"tcp://{host}:{self.port}"
        return self.settings.uri

    async def start(self, wait_for_backends: bool = True) -> None:
        """Bind the listener, start the backends, then serve. Binding comes first, so a
        port in use fails at once, before a backend loads anything. Without
        `wait_for_backends`, serve after `--startup-wait` seconds with the backends that
        are up; the others join later."""
        parsed = urlparse(self.settings.uri)
        try:
            await self._bind(parsed)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise OSError(exc.errno, f"cannot listen on {self.settings.uri}: {reason}") from exc
        if self.http is not None:
            self.http.bind()  # a taken HTTP port fails now too, before any backend loads
        metrics = Metrics(self.settings.metrics_port)
        await self.chain.start(None if wait_for_backends else self.settings.startup_wait)
        self.app = App(self.settings, self.chain, metrics)
        if self._server is not None:
            await self._server.start_serving()
            if self.settings.idle_timeout > 0:
                self._reaper = asyncio.create_task(self._close_idle_connections())
        else:
            self._stdio_task = asyncio.create_task(self._serve_stdio())
        if self.http is not None:
            await self.http.start(self.app)
        _LOGGER.info("ready on %s, sending %d Hz audio", self.uri, self.app.output_format.rate)
        if self.settings.zeroconf and parsed.scheme == "tcp":
            host = advertised_host(parsed.hostname or "")
            self._zeroconf = Zeroconf(self.settings.zeroconf, host, self.port or 10200)
            try:
                await self._zeroconf.register()
            except Exception as exc:  # discovery is a convenience, not a reason to die
                _LOGGER.warning("zeroconf registration failed: %s", exc)
                self._zeroconf = None

    async def _bind(self, parsed: ParseResult) -> None:
        limit = self.settings.max_event_bytes
        if parsed.scheme == "tcp":
            self._server = await asyncio.start_server(
                self._accept, parsed.hostname or "0.0.0.0", parsed.port, limit=limit,
                start_serving=False,
            )
            self.port = self._server.sockets[0].getsockname()[1]
        elif parsed.scheme == "unix":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(parsed.path)
            self._server = await asyncio.start_unix_server(
                self._accept, parsed.path, limit=limit, start_serving=False)

    async def wait(self) -> None:
        """Run until the listener is closed (or stdin ends)."""
        if self._stdio_task is not None:
            await self._stdio_task
        elif self._server is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._server.serve_forever()

    async def stop(self) -> None:
        """Stop accepting, give replies `shutdown_timeout` to finish, then cancel them."""
        if self._zeroconf is not None:
            await self._zeroconf.unregister()
        if self._server is not None:
            self._server.close()
        # HTTP requests get the same grace as Wyoming replies, at the same time.
        http_stopped = asyncio.create_task(self.http.stop()) if self.http is not None else None
        if self._reaper is not None:
            self._reaper.cancel()
        if self.handlers:
            for handler in self.handlers.values():
                if not handler.speaking:  # idle: nothing to finish, end it now
                    handler.close()
            _done, pending = await asyncio.wait(
                self.handlers, timeout=self.settings.shutdown_timeout
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._stdio_task is not None and not self._stdio_task.done():
            self._stdio_task.cancel()
        if http_stopped is not None:
            await http_stopped
        await self.chain.stop()
        if self.app is not None:
            self.app.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self.app is not None
        peer = writer.get_extra_info("peername")
        name = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "unix"
        if len(self.handlers) >= self.settings.max_connections and not await self._make_room():
            _LOGGER.warning("refusing %s: %d connections open, every one speaking", name,
                            len(self.handlers))
            with contextlib.suppress(ConnectionError):
                await async_write_event(
                    Error(text="server busy: too many connections", code="busy").event(), writer
                )
            writer.close()
            return
        _keep_alive(writer)
        task = asyncio.current_task()
        assert task is not None
        handler = ConnectionHandler(self.app, reader, writer, name)
        self.handlers[task] = handler
        self.app.metrics.connection(+1)
        try:
            await handler.run()
        except asyncio.CancelledError:
            pass  # cut off by shutdown; asyncio would log the cancelled callback as an error
        finally:
            self.handlers.pop(task, None)
            self.app.metrics.connection(-1)

    async def _make_room(self) -> bool:
        """At the limit: close the longest-idle connection with no reply in progress (a
        satellite that dropped off Wi-Fi leaves exactly such half-open connections)."""
        idle = [(h.last_activity, task) for task, h in self.handlers.items() if not h.speaking]
        if not idle:
            return False
        _, task = min(idle, key=lambda pair: pair[0])
        victim = self.handlers[task]
        _LOGGER.info("closing %s, idle for %.0f s, to make room for a new connection",
                     victim.name, time.monotonic() - victim.last_activity)
        victim.close(drop=True)
        await asyncio.wait({task}, timeout=1.0)
        return True

    async def _close_idle_connections(self) -> None:
        """Close connections that sent and received nothing for --idle-timeout seconds."""
        limit = self.settings.idle_timeout
        while True:
            await asyncio.sleep(min(limit / 4, 5.0))
            now = time.monotonic()
            for handler in list(self.handlers.values()):
                if now - handler.last_activity > limit:
                    _LOGGER.info("closing %s: nothing sent or received for %.0f s",
                                 handler.name, now - handler.last_activity)
                    handler.close(drop=True)

    async def _serve_stdio(self) -> None:
        assert self.app is not None
        loop = asyncio.get_running_loop()
        reader = await async_get_stdin()
        transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, sys.stdout
        )
        writer = asyncio.StreamWriter(transport, protocol, None, loop)
        handler = ConnectionHandler(self.app, reader, writer, "stdio", finish_on_eof=True)
        await handler.run()


def _keep_alive(writer: asyncio.StreamWriter) -> None:
    """TCP keepalive, so the kernel notices a peer that vanished (Wi-Fi gone, power cut)
    within about two minutes instead of never."""
    sock = writer.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE_S), ("TCP_KEEPINTVL", 10),
                          ("TCP_KEEPCNT", 3)):
        if hasattr(socket, option):  # Linux; macOS lacks some
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
