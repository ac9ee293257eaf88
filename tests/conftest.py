"""Fixtures every test shares: an in-process server on a free loopback port."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from wyoming_verba.app import App
from wyoming_verba.backends.base import Backend
from wyoming_verba.server import VerbaServer
from wyoming_verba.settings import Settings, load_settings

# Never let a test reach the network or a user's Hugging Face cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@dataclass
class RunningServer:
    uri: str
    settings: Settings
    app: App
    server: VerbaServer


StartServer = Callable[..., Awaitable[RunningServer]]


@pytest.fixture
async def verba_server(tmp_path) -> AsyncIterator[StartServer]:
    """`srv = await verba_server("--backend", "espeak", ...)`: a real server with those
    flags on 127.0.0.1 and a free port; `backends=[...]` injects backend instances."""
    running: list[tuple[VerbaServer, asyncio.Task]] = []

    async def start(*argv: str, backends: list[Backend] | None = None) -> RunningServer:
        args = ["--uri", "tcp://127.0.0.1:0", *argv]
        if "--data-dir" not in argv:
            args += ["--data-dir", str(tmp_path / f"data{len(running)}")]
        settings = load_settings(args, env={})
        server = VerbaServer(settings, backends=backends)
        await server.start()
        running.append((server, asyncio.create_task(server.wait())))
        assert server.app is not None
        return RunningServer(f"tcp://127.0.0.1:{server.port}", settings, server.app, server)

    yield start
    for server, task in reversed(running):
        await server.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
