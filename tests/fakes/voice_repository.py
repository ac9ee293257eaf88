"""A local Piper voice repository: a tiny HTTP/1.1 file server with the real
repository's layout (and ways to misbehave), so downloads are tested without the network."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field

from wyoming_verba.backends.piper.download import repository_paths

VOICE = "en_US-joe-medium"


@dataclass
class Repo:
    """A tiny HTTP/1.1 file server: path → bytes, with ways to misbehave."""

    files: dict[str, bytes] = field(repr=False)  # 60 MB: keep it out of reprs
    truncate: set[str] = field(default_factory=set)  # announce the full size, send half
    hold: asyncio.Event | None = None  # model requests wait for this
    requests: list[str] = field(default_factory=list)
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            path = request.split(b" ")[1].decode().lstrip("/")
            self.requests.append(path)
            body = self.files.get(path)
            if body is None:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")
                return
            if path.endswith(".onnx") and self.hold is not None:
                await self.hold.wait()
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n"
                         "Content-Type: application/octet-stream\r\n"
                         "Connection: close\r\n\r\n".encode())
            sent = body[: len(body) // 2] if path in self.truncate else body
            for start in range(0, len(sent), 1 << 20):
                writer.write(sent[start : start + (1 << 20)])
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def catalogue(model: bytes, config: bytes, voice: str = VOICE,
              others: dict[str, dict] | None = None) -> bytes:
    """voices.json as the real repository has it: `voice` with its files, and `others`
    (name → entry) listed but not served."""

    def entry(data: bytes) -> dict:
        return {"size_bytes": len(data), "md5_digest": hashlib.md5(data).hexdigest()}

    model_path, config_path = repository_paths(voice)
    listed = {voice: {"key": voice, "files": {
        model_path: entry(model), config_path: entry(config),
        model_path.rsplit("/", 1)[0] + "/MODEL_CARD": entry(b"card"),
    }}}
    return json.dumps({**listed, **(others or {})}).encode()
