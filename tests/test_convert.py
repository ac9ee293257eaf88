"""Converting each backend's PCM to the stream's one format, and cutting it into chunks:
Home Assistant builds one WAV header from the first audio-start, so every byte after it
must be in that format, with no sample lost or split."""

from __future__ import annotations

import numpy as np
import pytest

from wyoming_verba.audio import AudioFormat, PcmConverter, resample, split_chunks
from wyoming_verba.pcm import Pcm

FMT = AudioFormat(rate=24000)


def tone(rate: int, seconds: float = 0.5, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def as_float(audio: bytes) -> np.ndarray:
    return np.frombuffer(audio, dtype="<i2").astype(np.float32) / 32768.0


def test_the_stream_format_passes_through_untouched() -> None:
    pcm = Pcm.from_float(tone(24000), 24000)
    converter = PcmConverter(FMT)
    assert converter.convert(pcm) == pcm.audio
    assert converter.convert(Pcm(pcm.audio + b"\x01", 24000)) == pcm.audio  # half a sample
    assert converter.convert(Pcm(b"", 22050)) == b""
    assert converter.flush() == b""


def test_another_rate_is_resampled_whole_and_in_blocks_alike() -> None:
    samples = tone(22050, 1.0)
    one_shot = resample(Pcm.from_float(samples, 22050), 24000)
    assert one_shot.rate == 24000 and one_shot.samples == 24000  # a second stays a second
    converter = PcmConverter(FMT)
    blocks = b"".join(converter.convert(Pcm.from_float(samples[i : i + 1000], 22050))
                      for i in range(0, len(samples), 1000)) + converter.flush()
    assert len(blocks) == len(one_shot.audio)
    assert np.abs(as_float(blocks) - as_float(one_shot.audio)).max() < 1e-3  # no clicks
    # The tone is still a 440 Hz tone at half scale.
    spectrum = np.abs(np.fft.rfft(as_float(blocks)))
    assert abs(np.argmax(spectrum) * 24000 / len(as_float(blocks)) - 440) < 2
    assert 0.45 < np.abs(as_float(blocks)).max() < 0.55


def test_a_change_of_backend_keeps_the_old_resamplers_tail() -> None:
    converter = PcmConverter(FMT)
    first = converter.convert(Pcm.from_float(tone(22050), 22050))
    second = converter.convert(Pcm.from_float(tone(16000), 16000))
    rest = converter.flush()
    total = (len(first) + len(second) + len(rest)) // 2
    assert abs(total - 24000) <= 4  # 0.5 s + 0.5 s, nothing lost at the switch
    assert converter.convert(Pcm.from_float(tone(24000, 0.1), 24000)) != b""


@pytest.mark.parametrize(("width", "channels"), [(1, 1), (2, 2), (4, 1)])
def test_other_widths_and_channels_become_16_bit_mono(width: int, channels: int) -> None:
    mono = tone(24000, 0.1)
    if width == 1:
        raw = (mono * 127 + 128).astype(np.uint8).tobytes()
    elif width == 4:
        raw = (mono * 2**31).astype("<i4").tobytes()
    else:
        raw = np.repeat((mono * 32767).astype("<i2"), channels).tobytes()
    out = PcmConverter(FMT).convert(Pcm(raw, 24000, width, channels))
    assert len(out) == len(mono) * 2
    assert np.abs(as_float(out) - mono).max() < 0.02  # 8-bit steps are 1/128


def test_a_stereo_stream_gets_each_sample_twice() -> None:
    converter = PcmConverter(AudioFormat(rate=16000, channels=2))
    out = converter.convert(Pcm.from_float(tone(24000, 0.1), 24000)) + converter.flush()
    pairs = np.frombuffer(out, dtype="<i2").reshape(-1, 2)
    assert abs(len(pairs) - 1600) <= 2 and (pairs[:, 0] == pairs[:, 1]).all()
    assert np.abs(pairs[:, 0]).max() > 10000
    assert AudioFormat(rate=16000, channels=2).bytes_per_second == 64000


@pytest.mark.parametrize("channels", [1, 2])
def test_chunks_hold_whole_samples_and_nothing_is_lost(channels: int) -> None:
    fmt = AudioFormat(rate=16000, channels=channels)
    audio = bytes(range(256)) * 40  # 10240 bytes
    chunks = list(split_chunks(audio, fmt, 1024))
    step = 1024 * 2 * channels
    assert b"".join(chunks) == audio
    assert [len(c) for c in chunks[:-1]] == [step] * (len(chunks) - 1)
    assert 0 < len(chunks[-1]) <= step and len(chunks[-1]) % (2 * channels) == 0


def test_a_reused_resampler_starts_as_new() -> None:
    """Resamplers are kept for the next sentence: what the last one left in its delay
    line must not leak into the next (a click, or a few samples of the other sentence)."""
    def converted(samples: np.ndarray) -> bytes:
        converter = PcmConverter(FMT)
        return converter.convert(Pcm.from_float(samples, 22050)) + converter.flush()

    loud, quiet = tone(22050, 0.3, 1000.0), tone(22050, 0.3, 300.0) * 0.1
    alone = converted(quiet)
    cut_off = PcmConverter(FMT)  # a sentence abandoned mid-way keeps its resampler
    cut_off.convert(Pcm.from_float(loud, 22050))
    for _ in range(3):
        converted(loud)  # leaves used resamplers behind
        assert converted(quiet) == alone


def test_used_resamplers_are_kept_for_reuse_up_to_a_limit() -> None:
    from wyoming_verba.audio import convert

    key = (22050, 24000)
    block = Pcm.from_float(tone(22050, 0.05), 22050)
    busy = [PcmConverter(FMT) for _ in range(convert._SPARE_RESAMPLERS + 4)]
    for converter in busy:  # as many sentences at once: every spare is taken, more made
        converter.convert(block)
    assert not convert._spare.get(key)
    for converter in busy:
        converter.flush()
    assert len(convert._spare[key]) == convert._SPARE_RESAMPLERS  # the rest are let go
    kept = list(convert._spare[key])
    reused = PcmConverter(FMT)
    reused.convert(block)
    assert reused._resampler is kept[-1]  # the next sentence takes one of them
    assert len(convert._spare[key]) == convert._SPARE_RESAMPLERS - 1
    reused.flush()


@pytest.mark.parametrize(("rate", "seconds"), [(22050, 0.5), (16000, 0.3), (24000, 0.5),
                                               (22050, 0.0)])
def test_a_whole_block_converts_in_one_call_as_in_two(rate: int, seconds: float) -> None:
    """`whole_float` (a sentence that came whole) is `to_float` then `flush_float`: the
    same samples, and the resampler it took goes back for the next sentence."""
    from wyoming_verba.audio import convert

    block = Pcm.from_float(tone(rate, seconds), rate)
    two = PcmConverter(FMT)
    expected = np.concatenate((two.to_float(block), two.flush_float()))
    spare = len(convert._spare.get((rate, FMT.rate), []))
    got = PcmConverter(FMT).whole_float(block)
    assert got.dtype == np.float32 and np.array_equal(got, expected)
    assert len(convert._spare.get((rate, FMT.rate), [])) == spare


def test_encoding_clips_samples_beyond_full_scale() -> None:
    """A resampler's overshoot past ±1 is clipped, not wrapped around, unless the caller
    says every sample is within (the limiter's output)."""
    loud = np.array([1.5, -2.0, 0.5], dtype=np.float32)
    pcm = np.frombuffer(PcmConverter(FMT).encode(loud), dtype="<i2")
    assert pcm.tolist() == [32767, -32767, 16384]
