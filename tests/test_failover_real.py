"""Failover with real components: the fake Edge service refusing or dying mid-stream and
the tiny CSM model running out of memory mid-generation, with espeak-ng as last resort.
The client must get continuous audio in one format, each sentence once, from the right
backend (read off the request log line)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator

import pytest

from tests.client import describe, speak, speak_streaming
from tests.fakes.edge_service import FakeEdge

S1, S2, S3 = "Good morning to you.", "The front door has been open for ten minutes.", "Bye now."


@pytest.fixture
async def fake(monkeypatch) -> AsyncIterator[FakeEdge]:
    async with FakeEdge(pace=0.005) as server:
        server.patch(monkeypatch)
        yield server


def request_lines(caplog) -> list[dict[str, str]]:
    return [dict(re.findall(r"(\w+)=(\S+)", r.getMessage())) for r in caplog.records
            if r.name == "wyoming_verba.request"]


async def test_edge_dying_mid_sentence_is_finished_by_espeak(fake, verba_server, caplog):
    caplog.set_level(logging.INFO)
    srv = await verba_server("--backend", "edge,espeak", "--edge-chunk-timeout", "0.5")
    alone = await speak(srv.uri, S1)  # Edge alone, for the reference length
    fake.blocks_before_fault = 3
    fake.queue("normal", "close_mid_stream", "normal")
    fake.requests.clear()
    reply = await speak_streaming(srv.uri, [S1 + " ", S2 + " ", S3])
    assert reply.errors == []
    assert reply.types.count("audio-start") == 1 and reply.chunk_formats == {(24000, 2, 1)}
    # Edge was asked for each sentence exactly once (no retry after audio was sent) ...
    assert [r.text for r in fake.requests] == [S1, S2, S3]
    # ... and espeak-ng spoke what Edge could not finish.
    line = request_lines(caplog)[-1]
    assert line["backends"] == "edge,espeak" and line["failovers"] == "1"
    assert reply.seconds > 2 * alone.seconds


async def test_edge_refusing_trips_the_breaker_once(fake, verba_server, caplog):
    caplog.set_level(logging.INFO)
    srv = await verba_server("--backend", "edge,espeak", "--cooldown", "60")
    fake.mode = "forbidden"
    for _ in range(3):
        reply = await speak(srv.uri, "Is anyone there?")
        assert reply.errors == [] and reply.seconds > 0.5
    # Two refusals trip the breaker: the third sentence never went to Edge.
    assert fake.connections <= 4  # edge-tts retries a 403 once itself
    connections = fake.connections
    await speak(srv.uri, "Still here.")
    assert fake.connections == connections
    warnings = [r for r in caplog.records if "skipping it for" in r.getMessage()]
    assert len(warnings) == 1
    info = await describe(srv.uri)
    edge_voices = [v for v in info.tts[0].voices if v.name.endswith("Neural")]
    # Edge's voices stay installed (Home Assistant keeps their languages); espeak stands in.
    assert edge_voices and all(v.installed for v in edge_voices)
    assert [line["backends"] for line in request_lines(caplog)] == ["espeak"] * 4


async def test_csm_out_of_memory_mid_generation_falls_back(verba_server, monkeypatch, caplog):
    torch = pytest.importorskip("torch")
    from tests.fakes.tiny_csm import shared_tiny_csm

    monkeypatch.setattr("wyoming_verba.backends.csm.stopping.frame_cap", lambda text, *_: 6)
    caplog.set_level(logging.INFO)
    srv = await verba_server("--backend", "csm,espeak", "--csm-model", str(shared_tiny_csm()),
                             "--csm-device", "cpu", "--csm-seed", "1")
    csm = srv.server.chain.live[0]
    real_next_frame = csm._gen.next_frame
    calls = {"n": 0}

    def failing_next_frame(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # after the first chunk (2 frames) went out
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_next_frame(*args, **kwargs)

    monkeypatch.setattr(csm._gen, "next_frame", failing_next_frame)
    reply = await speak(srv.uri, "The garage door is closing now.")
    assert reply.errors == [] and reply.chunk_formats == {(24000, 2, 1)}
    line = request_lines(caplog)[-1]
    assert line["backends"] == "csm,espeak" and line["failovers"] == "1"
    # CSM gave 160 ms before dying; espeak-ng spoke the whole sentence again after it.
    assert reply.seconds > 1.0
    # The model is still usable: the next sentence is CSM's again.
    again = await speak(srv.uri, "Done.")
    assert again.errors == [] and request_lines(caplog)[-1]["backends"] == "csm"
