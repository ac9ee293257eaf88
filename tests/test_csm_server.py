"""End to end: the Wyoming server with `--backend csm --csm-model <tiny checkpoint>`."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.client import describe, speak, speak_streaming  # noqa: E402
from tests.fakes.tiny_csm import shared_tiny_csm  # noqa: E402

FRAMES = 5


@pytest.fixture(autouse=True)
def short_sentences(monkeypatch):
    monkeypatch.setattr("wyoming_verba.backends.csm.stopping.frame_cap", lambda text, *_: FRAMES)


async def test_csm_through_the_server(verba_server):
    srv = await verba_server("--backend", "csm", "--csm-model", str(shared_tiny_csm()),
                             "--csm-device", "cpu", "--csm-seed", "3", "--speaker", "1")
    info = await describe(srv.uri)
    (program,) = info.tts
    names = [v.name for v in program.voices]
    assert names == ["speaker-1", "speaker-0"]  # --speaker (SESAME_SPEAKER_ID) first
    assert all(v.installed and v.languages == ["en-US"] for v in program.voices)

    reply = await speak(srv.uri, "Hello from the tiny model.")
    assert not reply.errors
    assert reply.rate == 24000 and reply.width == 2 and reply.channels == 1
    assert abs(reply.seconds - FRAMES * 0.08) < 0.01
    assert np.abs(reply.samples).max() > 0.003

    # Two sentences streamed the Home Assistant way: each spoken once, same format.
    streamed = await speak_streaming(srv.uri, ["First sentence here. ", "Second one."],
                                     voice="speaker-0")
    assert not streamed.errors
    assert len(streamed.chunk_formats) == 1
    pause = srv.settings.sentence_pause  # between the two sentences
    assert abs(streamed.seconds - (2 * FRAMES * 0.08 + pause)) < 0.02


async def test_a_frozen_client_does_not_hold_the_gpu(verba_server, monkeypatch):
    """A satellite that froze mid-reply must not keep CSM's one generation slot: its reply
    waits for the client between sentences, with no backend held, and everybody else is
    served meanwhile. (Dropping it after --write-timeout is the handler's, the same for every
    backend: tests/test_resilience.py; here, how soon its audio outgrows the socket buffers
    depends on the machine's speed.)"""
    import asyncio

    from tests.test_resilience import frozen_client

    frames = 60  # 4.8 s a sentence: more audio than a frozen client's buffers take
    monkeypatch.setattr("wyoming_verba.backends.csm.stopping.frame_cap", lambda *_: frames)
    srv = await verba_server("--backend", "csm", "--csm-model", str(shared_tiny_csm()),
                             "--csm-device", "cpu", "--write-timeout", "4",
                             "--max-text-chars", "20000")
    frozen = await frozen_client(srv.server.port)
    try:
        await asyncio.sleep(2.0)  # its reply is under way; its client reads nothing
        assert len(srv.server.handlers) == 1  # still connected: within --write-timeout
        for i in range(3):
            reply = await asyncio.wait_for(speak(srv.uri, f"Reply number {i} is here."), 10)
            assert not reply.errors and abs(reply.seconds - frames * 0.08) < 0.01
    finally:
        frozen.close()
