"""One loudness across backends: a gain per voice, learned from what the voice said, and a
limiter that keeps true peaks at or below -1 dBTP.

Loudness is ITU-R BS.1770 integrated loudness measured by `pyloudnorm`. A voice starts
from its backend's typical level (measured here, `Backend.typical_loudness`) and every
finished sentence refines its estimate (the backend's other voices learn from it too).
A sentence is spoken at one gain from start to end: the level never pumps inside it."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyloudnorm
import soxr

MIN_MEASURE_S = 0.4  # BS.1770's gating block: shorter sentences are not measured
MAX_GAIN_DB = 20.0  # never boost a near-silent sentence into noise
MEMORY_S = 60.0  # older speech fades from the estimate over about this much audio
SETTLED_S = 20.0  # once a voice's estimate rests on this much speech...
SAMPLE_EVERY = 8  # ...only every 8th sentence is measured (a voice's level is stable),
MIN_INTERVAL_S = 2.0  # and at most one every 2 s: under load, measuring costs no more
CEILING_DB = -1.5  # the limiter's sample ceiling: with its smooth knee, true peaks stay < -1
KNEE_DB = -4.5  # below this the limiter leaves samples untouched


def integrated_loudness(samples: np.ndarray, rate: int) -> float | None:
    """LUFS of mono float samples, or None when too short or silent to say."""
    if samples.size < MIN_MEASURE_S * rate:
        return None
    value = float(pyloudnorm.Meter(rate).integrated_loudness(samples.astype(np.float64)))
    return value if math.isfinite(value) else None


def true_peak_db(samples: np.ndarray, rate: int) -> float:
    """dBTP: the peak of the signal oversampled 4x (BS.1770 Annex 2)."""
    if not samples.size:
        return -math.inf
    peak = float(np.max(np.abs(soxr.resample(samples.astype(np.float32), rate, rate * 4))))
    return 20 * math.log10(peak) if peak > 0 else -math.inf


_CEILING = 10 ** (CEILING_DB / 20)
_KNEE = 10 ** (KNEE_DB / 20)


def limit(samples: np.ndarray, bound: np.ndarray | None = None) -> np.ndarray:
    """A memoryless soft limiter: untouched below the knee, then a tanh curve that
    approaches the ceiling and never reaches it. Memoryless, so it cannot pump; smooth,
    so it adds no clicks. Every sample it returns is inside (-1, 1).

    `bound`, when the caller has it, is at least abs(samples) sample by sample (the
    magnitude before a fade): the samples over the knee are found in it, which saves
    two passes over a sentence that mostly stays below the knee."""
    candidates = np.flatnonzero((np.abs(samples) if bound is None else bound) > _KNEE)
    if not candidates.size:
        return samples
    values = samples[candidates]
    magnitude = np.abs(values)
    over = magnitude > _KNEE  # after a fade, some candidates no longer are
    candidates, values, magnitude = candidates[over], values[over], magnitude[over]
    out = samples.copy()
    room = _CEILING - _KNEE
    out[candidates] = np.sign(values) * (_KNEE + room * np.tanh((magnitude - _KNEE) / room))
    return out


@dataclass
class _Estimate:
    power: float  # mean of 10^(LUFS/10), weighted by seconds of speech
    seconds: float

    @property
    def lufs(self) -> float:
        return 10 * math.log10(self.power)

    def add(self, lufs: float, seconds: float) -> None:
        keep = math.exp(-seconds / MEMORY_S)  # older speech counts less and less
        weight = self.seconds * keep
        self.power = (self.power * weight + 10 ** (lufs / 10) * seconds) / (weight + seconds)
        self.seconds = weight + seconds


class LoudnessTracker:
    """Gains that bring every voice to `target` LUFS (None = leave levels alone).

    Shared by every connection; `observe` runs in worker threads, hence the lock."""

    def __init__(self, target: float | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.target = target
        self._clock = clock
        self._estimates: dict[tuple[str, str], _Estimate] = {}
        self._asked: dict[tuple[str, str], int] = {}  # sentences since the last measured
        self._measured: dict[tuple[str, str], float] = {}  # when it was measured
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.target is not None

    def gain(self, backend: str, voice: str, typical: float | None = None) -> float:
        """Linear gain for the next sentence of this voice: from what it said before, else
        from its backend's other voices, else from the backend's `typical` level; unity
        when nothing is known (the sentence then teaches the tracker)."""
        if self.target is None:
            return 1.0
        level = self.level(backend, voice)
        if level is None:
            level = typical
        if level is None:
            return 1.0
        gain_db = max(-MAX_GAIN_DB, min(MAX_GAIN_DB, self.target - level))
        return float(10 ** (gain_db / 20))

    def level(self, backend: str, voice: str) -> float | None:
        """The voice's loudness estimate in LUFS (its backend's while it has none)."""
        with self._lock:
            estimate = self._estimates.get((backend, voice)) or self._estimates.get((backend, ""))
            return estimate.lufs if estimate is not None else None

    def wants(self, backend: str, voice: str) -> bool:
        """Is this voice's next sentence worth measuring? Always until its estimate has
        settled, then one in SAMPLE_EVERY, at most one every MIN_INTERVAL_S: measuring is
        the costliest step of a sentence (about 1 ms for 2.5 s of speech) and under load
        a settled level learns nothing new from a hundred sentences a second."""
        if self.target is None:
            return False
        key = (backend, voice)
        with self._lock:
            estimate = self._estimates.get(key)
            if estimate is None or estimate.seconds < SETTLED_S:
                return True
            asked = self._asked[key] = self._asked.get(key, 0) + 1
            now = self._clock()
            if asked < SAMPLE_EVERY or now - self._measured.get(key, -math.inf) < MIN_INTERVAL_S:
                return False
            self._asked[key] = 0
            self._measured[key] = now
            return True

    def observe(self, backend: str, voice: str, samples: np.ndarray, rate: int) -> None:
        """Learn from a whole sentence this voice spoke (before any gain). Blocking (a few
        ms a sentence): callers run it off the event loop."""
        if self.target is None:
            return
        lufs = integrated_loudness(samples, rate)
        if lufs is None:
            return
        seconds = samples.size / rate
        with self._lock:
            for key in ((backend, voice), (backend, "")):  # the voice, and its backend's
                estimate = self._estimates.get(key)
                if estimate is None:
                    self._estimates[key] = _Estimate(10 ** (lufs / 10), seconds)
                else:
                    estimate.add(lufs, seconds)
