"""Ways to reach a server to measure: one given by --uri, a subprocess per backend
(`python -m wyoming_verba`), or an in-process VerbaServer (so a caller can patch
libraries, e.g. point edge_tts at a fake service). Each yields a URI that answers
`describe` with at least one installed voice, or raises ServerStartError."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence

from .measure import describe, installed_voices


class ServerStartError(Exception):
    """The backend did not come up; the message says why (shown, then skipped)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(uri: str, backend: str, server_args: Sequence[str] = ()) -> list[str]:
    return [sys.executable, "-m", "wyoming_verba", "--uri", uri, "--backend", backend,
            *server_args]


_LOGGED = re.compile(r"\b(?:ERROR|WARNING|CRITICAL) [\w.]+: (.*)")


def _why(log: str) -> str:
    """The server's own words for a backend that did not come up: its explicit
    reason, else its last warning or error, else its last line."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for marker in ("is not available:", "left out:", "wyoming-verba:"):
        hits = [ln for ln in lines if marker in ln]
        if hits:
            return hits[-1].split(marker, 1)[1].strip()
    for line in reversed(lines):
        if match := _LOGGED.search(line):
            return match[1]
    return lines[-1] if lines else "no output"


async def _require_voice(uri: str, log: str) -> None:
    info = await describe(uri)
    if not installed_voices(info):
        raise ServerStartError(f"no installed voice: {_why(log)}")


@contextlib.asynccontextmanager
async def external_server(uri: str) -> AsyncIterator[str]:
    try:
        await _require_voice(uri, "")
    except (OSError, TimeoutError) as exc:
        raise ServerStartError(f"{uri} does not answer describe: {exc}") from None
    yield uri


@contextlib.asynccontextmanager
async def subprocess_server(
    backend: str, server_args: Sequence[str] = (), *, start_timeout: float = 120.0
) -> AsyncIterator[str]:
    """`python -m wyoming_verba --backend NAME` on a free loopback port."""
    uri = f"tcp://127.0.0.1:{free_port()}"
    with tempfile.TemporaryFile("w+") as log:  # a file, so a chatty server never blocks
        proc = await asyncio.create_subprocess_exec(
            *server_command(uri, backend, server_args), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=os.environ.copy(),
        )

        def output() -> str:
            log.flush()
            log.seek(0)
            return log.read()

        try:
            await _wait_ready(proc, uri, start_timeout, output)
            yield uri
        finally:
            await _terminate(proc)


async def _wait_ready(
    proc: asyncio.subprocess.Process, uri: str, limit_s: float, output: Callable[[], str]
) -> None:
    deadline = time.monotonic() + limit_s
    while True:
        if proc.returncode is not None:
            raise ServerStartError(f"server exited ({proc.returncode}): {_why(output())}")
        try:
            info = await describe(uri, time_limit=2.0)
        except (OSError, TimeoutError):
            if time.monotonic() > deadline:
                raise ServerStartError(f"no answer to describe within {limit_s:g} s") from None
            await asyncio.sleep(0.1)
            continue
        if not installed_voices(info):
            raise ServerStartError(f"no installed voice: {_why(output())}")
        return


async def _terminate(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):  # it may have just exited
            proc.terminate()
        try:  # the server gets 10 s to shut down cleanly
            await asyncio.wait_for(proc.wait(), 10.0)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@contextlib.asynccontextmanager
async def in_process_server(
    backend: str, server_args: Sequence[str] = ()
) -> AsyncIterator[str]:
    """A VerbaServer in this process and event loop: patches made by the caller (e.g.
    edge_tts pointed at a fake service) apply. The server's work shares the loop with
    the client, as it would on a busy machine."""
    from wyoming_verba.server import VerbaServer
    from wyoming_verba.settings import SettingsError, load_settings

    try:
        settings = load_settings(["--uri", "tcp://127.0.0.1:0", "--backend", backend,
                                  *server_args])
    except SettingsError as exc:
        raise ServerStartError(str(exc)) from None
    server = VerbaServer(settings)
    await server.start()
    waiter = asyncio.create_task(server.wait())
    try:
        uri = f"tcp://127.0.0.1:{server.port}"
        reasons = {**server.skipped, **server.chain.down}
        await _require_voice(uri, "\n".join(f"is not available: {r}" for r in reasons.values()))
        yield uri
    finally:
        await server.stop()
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)

