"""Who may use the HTTP API: everyone without --http-api-key; with it, requests with
`Authorization: Bearer <key>`, and Home Assistant ingress requests (the Supervisor's
proxy, which has already authenticated the user, as Home Assistant add-ons trust it)."""

from __future__ import annotations

import hmac
import ipaddress
import logging

from aiohttp import web

from .errors import ApiError

_LOGGER = logging.getLogger(__name__)

SUPERVISOR_ADDRESS = "172.30.32.2"  # the Supervisor's ingress proxy on Home Assistant OS
INGRESS_HEADER = "X-Ingress-Path"
PUBLIC_PATHS = ("/", "/health")  # the page's shell (it holds no data) and liveness
PUBLIC_PREFIXES = ("/static/",)


def from_ingress(request: web.Request) -> bool:
    return request.remote == SUPERVISOR_ADDRESS and INGRESS_HEADER in request.headers


def bearer_ok(request: web.Request, key: str) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), key.encode())


def api_key_check(key: str | None):
    @web.middleware
    async def check(request: web.Request, handler) -> web.StreamResponse:
        public = request.path in PUBLIC_PATHS or request.path.startswith(PUBLIC_PREFIXES)
        if key and not public and not from_ingress(request) and not bearer_ok(request, key):
            given = "Authorization" in request.headers
            raise ApiError(401, "incorrect API key provided" if given else
                           "missing API key: send 'Authorization: Bearer <key>'",
                           code="invalid_api_key")
        return await handler(request)

    return check


def warn_if_open(host: str, port: int, key: str | None) -> None:
    """Say so at start-up when anyone on the network can use the API."""
    if key or _loopback(host):
        return
    _LOGGER.warning("the HTTP API on %s:%d has no --http-api-key: anyone who can reach this "
                    "port can use it (Home Assistant ingress is trusted either way)",
                    host, port)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything
