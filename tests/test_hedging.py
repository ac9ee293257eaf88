"""The first-audio deadline: a late backend gets company, not a 10 s wait. Satellites give
up when audio has not started about 2 s after the pipeline hands over."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests import client
from tests.fakes.edge_service import FakeEdge
from tests.fakes.tone_backend import Faults, ToneBackend
from wyoming_verba.backends.base import BackendError, Utterance
from wyoming_verba.backends.chain import BackendChain, SentenceOutcome, VoiceChoice


@pytest.fixture
async def fake_edge(monkeypatch):
    server = await FakeEdge().start()
    server.patch(monkeypatch)
    yield server
    await server.stop()


@pytest.mark.parametrize("edge_delay", [3.0, 6.0])
async def test_a_slow_edge_is_overtaken_by_the_next_backend(verba_server, fake_edge,
                                                            edge_delay, caplog):
    caplog.set_level(logging.INFO)
    fake_edge.first_audio_delay = edge_delay
    srv = await verba_server("--backend", "edge,espeak", "--first-audio-deadline", "0.8",
                             "--edge-first-audio-timeout", "20", "--edge-sentence-timeout", "30")
    reply = await client.speak(srv.uri, "The front door is locked.", voice="en-US-GuyNeural")
    assert reply.errors == []
    assert reply.first_audio_s is not None and reply.first_audio_s < 0.8 + 0.5
    assert "backends=espeak " in caplog.text and "hedges=1" in caplog.text
    assert len(fake_edge.requests) == 1  # Edge was asked once and then let go
    edge = srv.app.chain.live[0]
    assert srv.app.chain.usable(edge)  # a lost race is not a failure
    assert srv.app.chain.breakers["edge"].failures == 0


async def test_a_fast_owner_is_not_hedged(verba_server, fake_edge, caplog):
    caplog.set_level(logging.INFO)
    srv = await verba_server("--backend", "edge,espeak", "--first-audio-deadline", "0.8")
    reply = await client.speak(srv.uri, "The front door is locked.", voice="en-US-GuyNeural")
    assert reply.errors == [] and "backends=edge " in caplog.text and "hedges=0" in caplog.text


def chain_of(*backends) -> BackendChain:
    return BackendChain(list(backends), sentence_timeout=30.0)


async def speak(chain: BackendChain, text: str, deadline: float | None,
                outcome: SentenceOutcome) -> list[tuple[str, int]]:
    got = []
    async for name, pcm in chain.speak(text, VoiceChoice(), Utterance("t"), outcome, deadline):
        got.append((name, len(pcm.audio)))
    return got


async def test_every_word_is_spoken_once_by_the_winner():
    slow = ToneBackend(name="slow", frequency=300.0, faults=Faults(first_delay=2.0))
    fast = ToneBackend(name="fast", frequency=500.0)
    chain = chain_of(slow, fast)
    await chain.start()
    outcome = SentenceOutcome()
    loop = asyncio.get_running_loop()
    got = await speak(chain, "one two three", loop.time() + 0.2, outcome)
    assert {name for name, _ in got} == {"fast"} and outcome.hedged == ["fast"]
    assert fast.spoken == ["one two three"] and slow.spoken == []
    assert slow.cancelled == 1 and slow.streams_ended == 1  # cancelled at once, cleaned up
    assert chain.breakers["slow"].failures == 0 and not chain.breakers["slow"].probing


async def test_the_owner_still_wins_when_it_answers_first_after_the_deadline():
    owner = ToneBackend(name="owner", faults=Faults(first_delay=0.3))
    hedge = ToneBackend(name="hedge", faults=Faults(first_delay=2.0))
    chain = chain_of(owner, hedge)
    await chain.start()
    outcome = SentenceOutcome()
    got = await speak(chain, "one two", asyncio.get_running_loop().time() + 0.1, outcome)
    assert {name for name, _ in got} == {"owner"} and outcome.hedged == ["hedge"]
    assert hedge.spoken == [] and hedge.streams_ended == 1


async def test_a_hedge_that_fails_counts_and_the_owner_goes_on():
    owner = ToneBackend(name="owner", faults=Faults(first_delay=0.4))
    broken = ToneBackend(name="broken", faults=Faults(fail_before_audio=1, error=BackendError))
    chain = chain_of(owner, broken)
    await chain.start()
    outcome = SentenceOutcome()
    got = await speak(chain, "one two", asyncio.get_running_loop().time() + 0.1, outcome)
    assert {name for name, _ in got} == {"owner"}
    assert [name for name, _ in outcome.failures] == ["broken"]
    assert chain.breakers["broken"].failures == 1


async def test_no_deadline_no_hedge():
    slow = ToneBackend(name="slow", faults=Faults(first_delay=0.5))
    other = ToneBackend(name="other")
    chain = chain_of(slow, other)
    await chain.start()
    outcome = SentenceOutcome()
    got = await speak(chain, "one two", None, outcome)
    assert {name for name, _ in got} == {"slow"} and other.attempts == []


async def test_later_sentences_hedge_only_when_the_client_would_run_dry(verba_server, caplog):
    """Sentence two may take as long as the client still has audio to play."""
    caplog.set_level(logging.INFO)
    second_slow = ToneBackend(name="main")
    spare = ToneBackend(name="spare", frequency=880.0)
    srv = await verba_server("--first-audio-deadline", "0.5", "--sentence-pause", "0",
                             backends=[second_slow, spare])
    # ~1.6 s of audio in sentence one, then sentence two takes 1 s to start: no hedge.
    second_slow.faults.first_delay = 0.0
    original = second_slow.synthesize

    def delayed(text, voice, speaker, utterance):
        second_slow.faults.first_delay = 1.0 if text.startswith("Two") else 0.0
        return original(text, voice, speaker, utterance)

    second_slow.synthesize = delayed  # type: ignore[method-assign]
    reply = await client.speak(srv.uri, "One " + "word " * 15 + "end. Two words here.")
    assert reply.errors == [] and spare.attempts == []
    assert "hedges=0" in caplog.text
