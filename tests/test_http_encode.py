"""The HTTP front's parts on their own: encoders, the time stretch behind `speed`, the
response's Outbox, and the request history the page shows."""

from __future__ import annotations

import asyncio
import io
import wave

import numpy as np
import pytest
from wyoming.audio import AudioStart, AudioStop
from wyoming.error import Error

from tests.fakes.tone_backend import dominant_frequency, tone
from tests.http_client import decode
from wyoming_verba.audio import AudioFormat
from wyoming_verba.http.encode import CONTENT_TYPES, FORMATS, encoder_for
from wyoming_verba.http.outbox import HttpOutbox
from wyoming_verba.http.speed import TimeStretch
from wyoming_verba.metrics import History, RequestStats

RATE = 24000
SECOND = tone(440.0, 1.0, RATE)


def blocks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac"])
def test_encoders_give_output_before_the_end(fmt):
    """Bytes come out while audio is still going in (a stream, not a file at the end),
    and the whole decodes to the tone that went in."""
    encoder = encoder_for(fmt, AudioFormat(rate=RATE))
    before_end = b"".join(encoder.encode(b) for b in blocks(SECOND, 2048))
    whole = before_end + encoder.finish()
    assert len(before_end) > len(whole) // 2
    samples, rate = decode(whole, fmt)
    assert abs(len(samples) / rate - 1.0) < 0.1
    assert abs(dominant_frequency(samples, rate) - 440.0) < 5


def test_opus_takes_a_rate_it_cannot_encode():
    encoder = encoder_for("opus", AudioFormat(rate=22050))
    data = encoder.encode(tone(440.0, 1.0, 22050)) + encoder.finish()
    samples, rate = decode(data, "opus")
    assert abs(len(samples) / rate - 1.0) < 0.03


def test_wav_streams_a_header_then_the_pcm():
    encoder = encoder_for("wav", AudioFormat(rate=16000))
    data = encoder.encode(SECOND[:3200]) + encoder.encode(SECOND[3200:6400]) + encoder.finish()
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (16000, 2, 1)
        assert wav.readframes(10_000) == SECOND[:6400]
    empty = encoder_for("wav", AudioFormat()).finish()
    assert len(empty) == 44 and empty.startswith(b"RIFF")


def test_every_format_has_a_content_type():
    assert set(CONTENT_TYPES) == set(FORMATS)


@pytest.mark.parametrize("speed", [0.25, 0.8, 1.5, 4.0])
def test_time_stretch_keeps_the_pitch_and_streams_like_one_shot(speed):
    streamed = TimeStretch(speed, RATE)
    rng = np.random.default_rng(1)
    out, i = b"", 0
    while i < len(SECOND):
        n = int(rng.integers(1, 3000)) * 2
        out += streamed.feed(SECOND[i : i + n])
        i += n
    out += streamed.flush()
    one_shot = TimeStretch(speed, RATE)
    assert out == one_shot.feed(SECOND) + one_shot.flush()
    samples = np.frombuffer(out, dtype="<i2")
    assert len(samples) == round(RATE / speed)
    assert abs(dominant_frequency(samples, RATE) - 440.0) < 5
    level = np.sqrt(np.mean(samples[500:-500].astype(float) ** 2))
    assert abs(level / (0.3 * 32767 / np.sqrt(2)) - 1) < 0.05  # no gaps, no doubling


# --- the Outbox ------------------------------------------------------------------------


async def test_outbox_hands_the_writer_everything_and_waits_for_it():
    outbox = HttpOutbox(write_timeout=5)
    outbox.send(AudioStart(RATE, 2, 1).event())
    outbox.send_audio(b"ab")
    outbox.send_audio(b"cd")
    waiting = asyncio.create_task(outbox.writable())
    await asyncio.sleep(0.01)
    assert not waiting.done()  # the client has not taken it yet
    taken = await outbox.take()
    assert (taken.audio, taken.started, taken.ended, taken.error) == (b"abcd", True, False, None)
    outbox.written()
    await asyncio.wait_for(waiting, 1)
    outbox.send(AudioStop().event())
    assert (await outbox.take()).ended


async def test_outbox_drops_a_client_that_takes_nothing():
    outbox = HttpOutbox(write_timeout=0.05)
    outbox.send_audio(b"ab")
    with pytest.raises(ConnectionResetError, match="stopped reading"):
        await outbox.writable()
    with pytest.raises(ConnectionResetError):
        outbox.send_audio(b"cd")


async def test_outbox_passes_an_error_on():
    outbox = HttpOutbox(write_timeout=1)
    outbox.send(Error(text="every backend failed", code="synthesis-failed").event())
    taken = await outbox.take()
    assert taken.ended and taken.error is not None and taken.error.code == "synthesis-failed"


# --- the history the page shows -------------------------------------------------------


def test_history_keeps_the_last_requests_and_counts_first_audio():
    history = History(keep=3)
    for i, first in enumerate([0.04, 0.12, 0.12, 7.0, None]):
        stats = RequestStats(f"r{i}", first_audio=first, front="http" if i else "wyoming")
        stats.spoken_by("espeak")
        history.add(stats)
    assert [r["id"] for r in history.recent] == ["r2", "r3", "r4"]
    assert history.recent[-1]["first_audio_ms"] is None
    counts = dict(zip([*history.buckets, "more"], history.counts, strict=True))
    assert counts[0.05] == 1 and counts[0.2] == 2 and counts[10] == 1 and sum(counts.values()) == 4
