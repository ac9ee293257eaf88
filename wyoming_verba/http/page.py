"""The page at `/`: plain HTML, CSS and JavaScript from the package (no CDN, no build
step). Every URL in it is relative, so it works the same at `/` and under a Home
Assistant ingress path."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from aiohttp import web

STATIC = Path(str(resources.files(__package__) / "static"))
NO_CACHE = {"Cache-Control": "no-cache"}


async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html", headers=NO_CACHE)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/", index)
    router.add_static("/static/", STATIC, append_version=False)
