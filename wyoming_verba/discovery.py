"""Zeroconf (mDNS) discovery for Home Assistant: `_wyoming._tcp.local.` with a real
address, and a goodbye on shutdown."""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any

from . import __version__

_LOGGER = logging.getLogger(__name__)
ZEROCONF_TYPE = "_wyoming._tcp.local."


def advertised_host(bind_host: str) -> str:
    """The address to advertise: the bind address, or this machine's LAN address when
    bound to all interfaces (advertising 0.0.0.0 makes Home Assistant connect nowhere)."""
    if bind_host and bind_host not in ("0.0.0.0", "::"):
        return bind_host
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("224.0.0.251", 5353))  # mDNS group: no packet is sent
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"


class Zeroconf:
    """Register `_wyoming._tcp.local.` with a real address; unregister on shutdown."""

    def __init__(self, name: str, host: str, port: int) -> None:
        self.name, self.host, self.port = name, host, port
        self._zc: Any = None  # zeroconf.asyncio.AsyncZeroconf, imported when used
        self._info: Any = None

    async def register(self) -> None:
        from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

        info = AsyncServiceInfo(
            ZEROCONF_TYPE,
            f"{self.name}.{ZEROCONF_TYPE}",
            addresses=[socket.inet_aton(self.host)],
            port=self.port,
            properties={"version": __version__},
        )
        self._zc, self._info = AsyncZeroconf(), info
        await self._zc.async_register_service(info)
        _LOGGER.info("zeroconf: advertising %s at %s:%d", self.name, self.host, self.port)

    async def unregister(self) -> None:
        if self._zc is None:
            return
        with contextlib.suppress(Exception):
            # The call returns the goodbye broadcast; await it before closing, or
            # Home Assistant keeps the dead entry for the record's TTL.
            await (await self._zc.async_unregister_service(self._info))
        await self._zc.async_close()
        self._zc = None
