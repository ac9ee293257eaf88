"""The incremental MP3 decoder against an independent one-shot decode (PyAV's demuxer)."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes.edge_service import encode_mp3, tone_mp3
from wyoming_verba.backends.edge.mp3 import Mp3DecodeError, Mp3Decoder, decode_all

FRAME_SAMPLES = 576  # MPEG-2 Layer III
FRAME_BYTES = 144  # 48 kbit/s at 24 kHz, no padding


def reference_decode(mp3: bytes) -> tuple[np.ndarray, int]:
    """One-shot decode through the mp3 demuxer and FFmpeg's float decoder (mp3float):
    an independent code path from ours (parser + fixed-point decoder), equal to ±1 LSB."""
    with av.open(io.BytesIO(mp3), format="mp3") as container:
        frames = list(container.decode(audio=0))
    samples = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
    if np.issubdtype(samples.dtype, np.floating):
        samples = np.clip(np.round(samples * 32768.0), -32768, 32767)
    return samples.astype(np.int16), frames[0].sample_rate


def assert_same_audio(got: np.ndarray, expected: np.ndarray) -> None:
    assert len(got) == len(expected)
    assert np.abs(got.astype(np.int32) - expected.astype(np.int32)).max() <= 1


def incremental(mp3: bytes, cuts: list[int]) -> tuple[np.ndarray, set[int]]:
    decoder = Mp3Decoder()
    out, rates, last = [], set(), 0
    for cut in [*sorted(set(cuts)), len(mp3)]:
        for pcm in decoder.feed(mp3[last:cut]):
            out.append(pcm.audio)
            rates.add(pcm.rate)
        last = cut
    for pcm in decoder.flush():
        out.append(pcm.audio)
        rates.add(pcm.rate)
    return np.frombuffer(b"".join(out), dtype="<i2"), rates


MP3 = tone_mp3(2.0, 300.0)


@pytest.mark.parametrize("block", [1, 7, 144, 1000, len(MP3)])
def test_incremental_matches_one_shot(block: int) -> None:
    expected, rate = reference_decode(MP3)
    got, rates = incremental(MP3, list(range(block, len(MP3), block)))
    assert rates == {rate} == {24000}
    assert_same_audio(got, expected)
    # and bit-exact with our own decoder fed everything at once
    assert got.tobytes() == decode_all(MP3).audio
    assert np.abs(got.astype(np.int32)).max() > 4000  # real audio, not silence


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=1, max_value=len(MP3) - 1), max_size=40))
def test_any_split_matches_one_shot(cuts: list[int]) -> None:
    expected, _ = reference_decode(MP3)
    got, _ = incremental(MP3, cuts)
    assert_same_audio(got, expected)
    assert got.tobytes() == decode_all(MP3).audio


def test_each_frame_comes_out_when_its_last_byte_arrives() -> None:
    """No look-ahead: after n whole frames, at least n-1 frames of PCM are out."""
    decoder = Mp3Decoder()
    for n in range(1, 30):
        decoder.feed(MP3[(n - 1) * FRAME_BYTES : n * FRAME_BYTES])
        assert decoder.samples_out >= (n - 1) * FRAME_SAMPLES


def test_rate_comes_from_the_stream() -> None:
    t = np.arange(16000) / 16000
    mp3_16k = encode_mp3((6000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16), rate=16000,
                         kbps=32)
    pcm = decode_all(mp3_16k)
    assert pcm.rate == 16000
    assert abs(pcm.seconds - 1.0) < 0.15


def test_decoded_tone_resembles_the_source() -> None:
    rate, seconds, freq = 24000, 1.0, 440.0
    t = np.arange(int(rate * seconds)) / rate
    source = (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    pcm = decode_all(encode_mp3(source))
    samples = np.frombuffer(pcm.audio, dtype="<i2").astype(np.float64)
    assert abs(pcm.seconds - seconds) < 0.15  # encoder/decoder delay and padding only
    spectrum = np.abs(np.fft.rfft(samples))
    peak = np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()]
    assert abs(peak - freq) < 5
    assert 0.8 < np.sqrt(np.mean(samples**2)) / (8000 / np.sqrt(2)) < 1.2


def test_garbage_gives_no_audio_and_no_crash() -> None:
    rng = np.random.default_rng(1)
    decoder = Mp3Decoder()
    noise = rng.integers(0, 256, 5000, dtype=np.uint8).tobytes().replace(b"\xff", b"\x00")
    assert decoder.feed(noise) == []
    try:
        assert decoder.flush() == []
    except Mp3DecodeError:  # the one exception type it may raise
        pass


def test_empty_input() -> None:
    decoder = Mp3Decoder()
    assert decoder.feed(b"") == []
    assert decode_all(b"").audio == b""
