"""PCM blocks and the one conversion between float samples and 16-bit integers.

The bottom layer: backends produce `Pcm`, `audio.py` converts it to the stream's format,
and nothing here imports anything else of the package."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SAMPLE_WIDTH = 2  # 16-bit: what every backend here produces and every stream carries


@dataclass(frozen=True)
class Pcm:
    """A block of signed little-endian PCM that knows its own format."""

    audio: bytes
    rate: int
    width: int = SAMPLE_WIDTH
    channels: int = 1
    # The backend says no audio follows in this sentence: the reply shapes the block and
    # ends the sentence in one step instead of two. Not part of what the audio is.
    last: bool = field(default=False, compare=False)

    @classmethod
    def from_float(cls, samples: np.ndarray, rate: int) -> Pcm:
        """Mono float samples in [-1, 1] as 16-bit PCM."""
        return cls(float_to_int16(samples).tobytes(), rate)

    @property
    def samples(self) -> int:
        return len(self.audio) // (self.width * self.channels)

    @property
    def seconds(self) -> float:
        return self.samples / self.rate


def float_to_int16(samples: np.ndarray, within: bool = False) -> np.ndarray:
    """Float samples in [-1, 1] (clipped beyond) → little-endian int16, rounded.
    `within`: the caller knows every sample is inside [-1, 1] (the limiter's output), so
    the clip, a no-op then, is skipped."""
    if within:
        scaled = samples * 32767.0  # a new array: the rest works in place in it
    else:
        scaled = np.clip(samples, -1.0, 1.0)
        scaled *= 32767.0
    return np.rint(scaled, out=scaled).astype("<i2")


def to_float_mono(pcm: Pcm) -> np.ndarray:
    """Decode any integer PCM width into float32 in [-1, 1], downmixed to mono."""
    if pcm.width == 2:
        # One pass: 1/32768 is a power of two, so this equals dividing.
        samples = np.multiply(np.frombuffer(pcm.audio, dtype="<i2"), np.float32(1 / 32768),
                              dtype=np.float32)
    elif pcm.width == 4:
        samples = np.frombuffer(pcm.audio, dtype="<i4").astype(np.float32) / 2147483648.0
    elif pcm.width == 1:  # WAV 8-bit is unsigned
        samples = (np.frombuffer(pcm.audio, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    else:
        raise ValueError(f"unsupported sample width {pcm.width}")
    if pcm.channels > 1:
        usable = len(samples) - len(samples) % pcm.channels
        samples = samples[:usable].reshape(-1, pcm.channels).mean(axis=1)
    return samples
