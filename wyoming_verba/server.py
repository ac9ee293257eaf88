"""The Wyoming listener from --uri: accepting connections within the limits, one
handler per connection, zeroconf, and a graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from urllib.parse import urlparse

from wyoming.error import Error
from wyoming.event import async_get_stdin, async_write_event

from .app import App
from .backends.base import Backend
from .backends.chain import BackendChain
from .backends.factory import build_backends
from .discovery import Zeroconf, advertised_host
from .handler import ConnectionHandler
from .metrics import Metrics
from .settings import Settings

_LOGGER = logging.getLogger(__name__)


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
        self.port: int | None = None

    @property
    def uri(self) -> str:
        parsed = urlparse(self.settings.uri)
        if parsed.scheme == "tcp":
            host = parsed.hostname or "0.0.0.0"
            return f"tcp://{host}:{self.port}"
        return self.settings.uri

    async def start(self, wait_for_backends: bool = True) -> None:
        """Start the backends and the listener. Without `wait_for_backends`, listen after
        `--startup-wait` seconds with the backends that are up; the others join later."""
        await self.chain.start(None if wait_for_backends else self.settings.startup_wait)
        self.app = App(self.settings, self.chain, Metrics(self.settings.metrics_port))
        parsed = urlparse(self.settings.uri)
        limit = self.settings.max_event_bytes
        if parsed.scheme == "tcp":
            self._server = await asyncio.start_server(
                self._accept, parsed.hostname or "0.0.0.0", parsed.port, limit=limit
            )
            self.port = self._server.sockets[0].getsockname()[1]
        elif parsed.scheme == "unix":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(parsed.path)
            self._server = await asyncio.start_unix_server(self._accept, parsed.path, limit=limit)
        else:
            self._stdio_task = asyncio.create_task(self._serve_stdio())
        _LOGGER.info("ready on %s", self.uri)
        if self.settings.zeroconf and parsed.scheme == "tcp":
            host = advertised_host(parsed.hostname or "")
            self._zeroconf = Zeroconf(self.settings.zeroconf, host, self.port or 10200)
            try:
                await self._zeroconf.register()
            except Exception as exc:  # discovery is a convenience, not a reason to die
                _LOGGER.warning("zeroconf registration failed: %s", exc)
                self._zeroconf = None

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
        if self.handlers:
            for handler in self.handlers.values():
                if not handler.replies:  # idle: nothing to finish, end it now
                    handler.reader.feed_eof()
            _done, pending = await asyncio.wait(
                self.handlers, timeout=self.settings.shutdown_timeout
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._stdio_task is not None and not self._stdio_task.done():
            self._stdio_task.cancel()
        await self.chain.stop()
        if self.app is not None:
            self.app.metrics.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self.app is not None
        peer = writer.get_extra_info("peername")
        name = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "unix"
        if len(self.handlers) >= self.settings.max_connections:
            _LOGGER.warning("refusing %s: %d connections open", name, len(self.handlers))
            with contextlib.suppress(ConnectionError):
                await async_write_event(
                    Error(text="server busy: too many connections", code="busy").event(), writer
                )
            writer.close()
            return
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
