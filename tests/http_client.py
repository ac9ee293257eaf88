"""Helpers for the HTTP front's tests: the API's address, the official OpenAI client on
it, and decoding any response_format back to PCM."""

from __future__ import annotations

import base64
import io
import json

import av
import numpy as np
import openai

from tests.conftest import RunningServer


def base_url(srv: RunningServer) -> str:
    assert srv.server.http is not None and srv.server.http.port
    return f"http://127.0.0.1:{srv.server.http.port}"


def openai_client(srv: RunningServer, api_key: str = "no-key-needed") -> openai.AsyncOpenAI:
    """OpenAI's own async client on our /v1, without its retries (a test sees each
    answer as the server gave it)."""
    return openai.AsyncOpenAI(base_url=base_url(srv) + "/v1", api_key=api_key, max_retries=0,
                              timeout=60.0)


def decode(data: bytes, response_format: str, rate: int = 24000) -> tuple[np.ndarray, int]:
    """Mono int16 samples and their rate, whatever the format."""
    if response_format == "pcm":
        return np.frombuffer(data, dtype="<i2"), rate
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono")
        blocks = []
        out_rate = 0
        for frame in container.decode(stream):
            out_rate = frame.sample_rate
            for converted in resampler.resample(frame):
                blocks.append(converted.to_ndarray().reshape(-1))
    return (np.concatenate(blocks) if blocks else np.zeros(0, "<i2")), out_rate


def sse_events(body: bytes) -> list[dict]:
    """The JSON of every `data:` line of a server-sent-events body."""
    events = []
    for block in body.decode().split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events


def sse_audio(events: list[dict]) -> bytes:
    return b"".join(base64.b64decode(e["audio"]) for e in events
                    if e["type"] == "speech.audio.delta")
