"""The stream's output format: converting any backend's PCM to it and cutting it into chunks.

Home Assistant builds one WAV header from the first `audio-start`, so every chunk of a
stream must share one rate/width/channels whichever backend produced it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import soxr

from ..pcm import SAMPLE_WIDTH, Pcm, float_to_int16, to_float_mono


@dataclass(frozen=True)
class AudioFormat:
    rate: int = 24000
    width: int = SAMPLE_WIDTH
    channels: int = 1

    @property
    def bytes_per_second(self) -> int:
        return self.rate * self.width * self.channels


# soxr's high quality: flat through speech's band, images near -140 dBc, for about 12 ms of
# CPU per minute of audio, within 10 % of medium or low quality (README, "Resampling").
RESAMPLE_QUALITY = "HQ"


_SPARE_RESAMPLERS = 8  # kept per conversion; more than this many sentences at once is rare
_spare: dict[tuple[int, int], list[soxr.ResampleStream]] = {}
_spare_lock = threading.Lock()  # converters run in the audio pool's threads


def _resampler(source: int, target: int) -> soxr.ResampleStream:
    """A fresh-state resampler: a used one when there is one (making one costs about a tenth
    of resampling a whole sentence)."""
    with _spare_lock:
        spare = _spare.get((source, target))
        if spare:
            return spare.pop()
    return soxr.ResampleStream(source, target, 1, dtype="float32", quality=RESAMPLE_QUALITY)


def _give_back(resampler: soxr.ResampleStream, source: int, target: int) -> None:
    resampler.clear()  # as new: no input, no delay line
    with _spare_lock:
        spare = _spare.setdefault((source, target), [])
        if len(spare) < _SPARE_RESAMPLERS:
            spare.append(resampler)


class PcmConverter:
    """Converts the PCM of one stream, block by block, into `AudioFormat`.

    Resampling is stateful (soxr.ResampleStream), so blocks join without clicks.
    A change of source rate (another backend took over) flushes the old resampler."""

    def __init__(self, target: AudioFormat) -> None:
        self.target = target
        self._source_rate: int | None = None
        self._resampler: soxr.ResampleStream | None = None

    def convert(self, pcm: Pcm) -> bytes:
        if not pcm.audio:
            return b""
        out = b""
        if pcm.rate != self._source_rate:
            out = self.flush()
        # Fast path: already in the stream's format.
        if pcm.rate == self.target.rate and pcm.width == SAMPLE_WIDTH and pcm.channels == 1:
            self._source_rate = pcm.rate
            return out + pcm.audio[: len(pcm.audio) - len(pcm.audio) % SAMPLE_WIDTH]
        return out + self.encode(self.to_float(pcm))

    def to_float(self, pcm: Pcm) -> np.ndarray:
        """`pcm` as float mono at the stream's rate. A change of source rate drops the old
        resampler's tail: call `flush_float` first to keep it."""
        if pcm.rate != self._source_rate:
            self._resampler = None
            self._source_rate = pcm.rate
            if pcm.rate != self.target.rate:
                self._resampler = _resampler(pcm.rate, self.target.rate)
        samples = to_float_mono(pcm)
        if self._resampler is not None and samples.size:
            samples = self._resampler.resample_chunk(samples, last=False)
        return samples

    def whole_float(self, pcm: Pcm) -> np.ndarray:
        """`to_float` then `flush_float` of a block that is all there is, in one call, on
        a converter that has converted nothing yet (the same samples)."""
        samples = to_float_mono(pcm)
        if pcm.rate == self.target.rate or not samples.size:
            return samples
        resampler = _resampler(pcm.rate, self.target.rate)
        samples = resampler.resample_chunk(samples, last=True)
        _give_back(resampler, pcm.rate, self.target.rate)
        return samples

    def flush_float(self) -> np.ndarray:
        """Drain the resampler's tail (end of a sentence or a change of backend)."""
        resampler, source = self._resampler, self._source_rate
        self._resampler = self._source_rate = None
        if resampler is None or source is None:
            return np.zeros(0, dtype=np.float32)
        tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        _give_back(resampler, source, self.target.rate)
        return tail

    def flush(self) -> bytes:
        return self.encode(self.flush_float())

    def encode(self, samples: np.ndarray, within: bool = False) -> bytes:
        """Float mono samples → the stream's 16-bit PCM (channels duplicated). `within`:
        every sample is known to be inside [-1, 1] (see `float_to_int16`)."""
        if not samples.size:
            return b""
        mono = float_to_int16(samples, within)
        if self.target.channels == 1:
            return mono.tobytes()
        return np.repeat(mono, self.target.channels).tobytes()


def split_chunks(audio: bytes, fmt: AudioFormat, samples_per_chunk: int) -> Iterator[bytes]:
    """Cut audio into chunks of at most `samples_per_chunk`, never inside a sample."""
    step = samples_per_chunk * fmt.width * fmt.channels
    for start in range(0, len(audio), step):
        yield audio[start : start + step]


def resample(pcm: Pcm, rate: int) -> Pcm:
    """One-shot conversion to 16-bit mono at `rate` (for tests and offline tools)."""
    converter = PcmConverter(AudioFormat(rate=rate))
    return Pcm(converter.convert(pcm) + converter.flush(), rate)
