"""One reply and one connection's dispatch, driven directly: ordering between replies,
errors that are the client's fault versus ours, and cleanup that happens at once."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest
from wyoming.audio import AudioChunk
from wyoming.client import AsyncClient
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.ping import Ping
from wyoming.tts import Synthesize

from tests.fakes.tone_backend import Faults, ToneBackend
from wyoming_verba.backends.chain import VoiceChoice
from wyoming_verba.pcm import Pcm
from wyoming_verba.reply import Reply


class ListOutbox:
    """A client that reads everything at once."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def send(self, event: Event) -> None:
        self.events.append(event)

    def send_audio(self, audio: bytes) -> None:
        self.send(AudioChunk(24000, 2, 1, audio).event())

    async def writable(self) -> None:
        await asyncio.sleep(0)

    @property
    def types(self) -> list[str]:
        return [e.type for e in self.events]


async def test_cancelling_a_reply_leaves_the_one_before_it_alone(verba_server):
    """Over stdio, end of input cancels an unfinished stream but must let the plain
    reply queued before it finish (gather() used to cancel that one too)."""
    srv = await verba_server(backends=[ToneBackend(faults=Faults(chunk_delay=0.01))])
    out = ListOutbox()
    first = Reply(srv.app, out, VoiceChoice(), streaming=False, ssml=False, previous=None)
    first.feed("The first reply is spoken to its end.")
    first.end_text()
    second = Reply(srv.app, out, VoiceChoice(), streaming=True, ssml=False,
                   previous=first.task)
    second.feed("A stream that")
    await asyncio.sleep(0.05)
    second.cancel()
    await asyncio.wait({first.task, second.task}, timeout=10)
    assert out.types[0] == "audio-start" and out.types[-1] == "audio-stop"
    assert "synthesize-stopped" not in out.types


class HangUpOutbox(ListOutbox):
    """A client that goes away after its first chunk of audio."""

    def send(self, event: Event) -> None:
        if "audio-chunk" in self.types:
            raise ConnectionResetError("gone")
        super().send(event)


async def test_a_reply_whose_client_left_releases_its_backend_at_once(verba_server):
    """The backend's stream is closed when the reply ends, not whenever the garbage
    collector or the event loop gets to it: the breaker's probe, the GPU slot and
    espeak's stop flag are released before anything else runs."""
    tone = ToneBackend(faults=Faults(chunk_delay=0.05))
    srv = await verba_server(backends=[tone])
    reply = Reply(srv.app, HangUpOutbox(), VoiceChoice(), streaming=False, ssml=False,
                  previous=None)
    reply.feed("word " * 40)
    reply.end_text()
    gc.disable()
    try:
        await asyncio.wait({reply.task})
        assert tone.streams_ended == 1
        assert srv.app.chain.breakers["tone"].probing is False
    finally:
        gc.enable()


async def test_an_internal_error_is_not_blamed_on_the_client(verba_server, caplog, monkeypatch):
    srv = await verba_server("--backend", "espeak")

    def broken(*_args, **_kwargs):
        raise KeyError("a bug of ours")

    monkeypatch.setattr(srv.app.chain, "resolve", broken)
    caplog.set_level(logging.INFO)
    async with AsyncClient.from_uri(srv.uri) as client:
        await client.write_event(Synthesize(text="Hello.").event())
        event = await asyncio.wait_for(client.read_event(), 5)
        assert event.type == "error" and event.data["code"] == "internal-error"
        await client.write_event(Ping().event())  # the connection goes on
        assert (await asyncio.wait_for(client.read_event(), 5)).type == "pong"
    assert "Traceback" in caplog.text and "a bug of ours" in caplog.text


async def test_a_crash_in_describe_is_answered_and_the_connection_lives(verba_server,
                                                                       monkeypatch):
    srv = await verba_server("--backend", "espeak")
    monkeypatch.setattr(srv.app, "info_bytes", lambda encode: 1 / 0)
    async with AsyncClient.from_uri(srv.uri) as client:
        await client.write_event(Describe().event())
        event = await asyncio.wait_for(client.read_event(), 5)
        assert event.type == "error" and event.data["code"] == "internal-error"
        await client.write_event(Ping().event())
        assert (await asyncio.wait_for(client.read_event(), 5)).type == "pong"


async def test_a_client_hanging_up_mid_reply_is_one_info_line(verba_server, caplog):
    srv = await verba_server("--backend", "espeak")
    caplog.set_level(logging.INFO)
    for _ in range(3):
        async with AsyncClient.from_uri(srv.uri) as client:
            await client.write_event(Synthesize(text="word " * 1500).event())
            assert (await asyncio.wait_for(client.read_event(), 5)).type == "audio-start"
            await client.read_event()
    for _ in range(100):
        if caplog.text.count("outcome=cancelled") == 3:
            break
        await asyncio.sleep(0.05)
    assert caplog.text.count("outcome=cancelled") == 3
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


@pytest.mark.parametrize("bad", [{"voice": "x"}, {"text": 5}])
async def test_malformed_input_is_still_a_bad_event(verba_server, bad):
    srv = await verba_server("--backend", "espeak")
    async with AsyncClient.from_uri(srv.uri) as client:
        await client.write_event(Event("synthesize", {"text": "Hi.", **bad}))
        event = await asyncio.wait_for(client.read_event(), 5)
        assert event.type == "error" and event.data["code"] == "bad-event"



class WholeTone(ToneBackend):
    """Yields each sentence in one block marked `last`, as espeak-ng and Piper do."""

    async def synthesize(self, text, voice, speaker, utterance):
        blocks = [c async for c in super().synthesize(text, voice, speaker, utterance)
                  if isinstance(c, Pcm)]
        yield Pcm(b"".join(b.audio for b in blocks), self.rate, last=True)


@pytest.mark.parametrize(("backend", "trips_per_sentence"), [
    (WholeTone, {"finish": 1}),  # shaped and ended in one trip to the audio pool
    (ToneBackend, {"feed": 5, "end": 1}),  # a block per word, then the sentence's end
])
async def test_a_block_marked_last_ends_its_sentence_in_the_same_trip(verba_server, backend,
                                                                      trips_per_sentence):
    srv = await verba_server("--loudness", "off", backends=[backend()])
    pool = srv.app.audio_pool
    trips: list[str] = []

    class Counting:
        async def run(self, fn, *args):
            trips.append(fn.__name__)
            return await pool.run(fn, *args)

        def __getattr__(self, name):
            return getattr(pool, name)

    srv.app.audio_pool = Counting()
    out = ListOutbox()
    reply = Reply(srv.app, out, VoiceChoice(), streaming=False, ssml=False, previous=None)
    reply.feed("The first sentence is here. And a second one now.")  # 5 words each
    reply.end_text()
    await asyncio.wait_for(reply.task, 10)
    assert {t: trips.count(t) for t in set(trips)} == {
        t: 2 * n for t, n in trips_per_sentence.items()}
    assert out.types[0] == "audio-start" and out.types[-1] == "audio-stop"
    assert "audio-chunk" in out.types
