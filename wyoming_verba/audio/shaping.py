"""One sentence's audio on its way to the client: in the stream's format, at its voice's
gain, with its silences trimmed and every cut faded.

- Leading silence is dropped, so the first audio of a reply is speech, and trailing
  silence too: the pause between sentences is the reply's to choose (--sentence-pause),
  the same whichever backend spoke.
- Every edge gets a FADE_S ramp: where speech starts, where it ends, and where one backend
  hands the rest of a sentence to another. To fade the end, the last few milliseconds are
  held back until the next block shows whether speech goes on.
- One gain for the whole sentence (from `LoudnessTracker`), then the soft limiter."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from ..pcm import Pcm
from .convert import AudioFormat, PcmConverter
from .loudness import LoudnessTracker, limit

FADE_S = 0.005  # a few milliseconds: no click, no audible ramp
SILENCE = 10 ** (-50 / 20)  # below about -50 dBFS a sample counts as silence

Source = tuple[str, str]  # (backend, voice)


@functools.cache
def _curve(n: int) -> np.ndarray:
    curve = np.linspace(0.0, 1.0, n, endpoint=False, dtype=np.float32)
    curve.flags.writeable = False  # shared by every fade of this length
    return curve


def ramp(samples: np.ndarray, n: int, rising: bool) -> np.ndarray:
    """Fade the first (rising) or last n samples of `samples` in place."""
    n = min(n, samples.size)
    if n:
        if rising:
            samples[:n] *= _curve(n)
        else:
            samples[-n:] *= _curve(n)[::-1]
    return samples


def _loud(samples: np.ndarray, magnitude: np.ndarray | None = None) -> tuple[int, int] | None:
    """Where speech starts and ends in `samples` (the first loud sample, one past the last),
    or None for silence (and for no samples at all). `magnitude`: abs(samples), if known."""
    if not samples.size:
        return None
    loud = (np.abs(samples) if magnitude is None else magnitude) > SILENCE
    first = int(loud.argmax())
    if not loud[first]:
        return None
    return first, samples.size - int(loud[::-1].argmax())


class SentenceShaper:
    """Feed it a sentence's PCM block by block (with the backend and voice that made
    each block); it returns the stream's bytes as soon as they are final."""

    def __init__(self, fmt: AudioFormat, loudness: LoudnessTracker,
                 typical: Callable[[str], float | None] = lambda _backend: None) -> None:
        self.fmt = fmt
        self.loudness = loudness
        self._typical = typical  # a backend's usual level, for a voice not measured yet
        self._converter = PcmConverter(fmt)
        self._fade = max(1, round(FADE_S * fmt.rate))
        self._source: Source | None = None
        self._gain = 1.0
        self._speaking = False  # the current source's speech has started
        self._pending = np.zeros(0, dtype=np.float32)  # after gain, not yet final
        self.raw: dict[Source, list[np.ndarray]] = {}  # before gain, to learn from

    def feed(self, pcm: Pcm, source: Source) -> bytes:
        out = b""
        if source != self._source:
            out = self._close_source()
            self._begin(source)
        samples = self._converter.to_float(pcm)
        return out + self._push(samples)

    def end(self) -> bytes:
        """The sentence is over: what was held back, trailing silence trimmed, faded."""
        return self._close_source()

    def finish(self, pcm: Pcm, source: Source) -> bytes:
        """`feed` the sentence's last block and `end` it, in one call. A sentence that
        comes whole (espeak-ng, Piper) is shaped in one pass: the same bytes for about half
        the steps, which under load are turns for the GIL."""
        if self._source is not None:  # blocks came before this one
            return self.feed(pcm, source) + self.end()
        self._begin(source)
        samples = self._converter.whole_float(pcm)
        if not samples.size:
            return b""
        self.raw.setdefault(source, []).append(samples)
        shaped = samples * self._gain
        magnitude = np.abs(shaped)  # one pass, for the trim and the limiter both
        span = _loud(shaped, magnitude)
        if span is None:
            return b""
        self._speaking = True
        start, end = max(0, span[0] - self._fade), min(shaped.size, span[1] + self._fade)
        speech = ramp(shaped[start:end], self._fade, True)
        # The fade out covers what `_close_source` would have: the last FADE_S kept.
        return self._encode(ramp(speech, self._fade, False), magnitude[start:end])

    def observations(self, sources: list[Source]) -> list[tuple[Source, np.ndarray]]:
        """These sources' whole raw audio of this sentence, for `LoudnessTracker.observe`."""
        return [(source, np.concatenate(self.raw[source])) for source in sources
                if self.raw.get(source)]

    # --- internals ---------------------------------------------------------------

    def _begin(self, source: Source) -> None:
        """`source` speaks from here: at its own gain, its speech not started yet."""
        self._source, self._speaking = source, False
        self._gain = self.loudness.gain(*source, typical=self._typical(source[0]))

    def _push(self, samples: np.ndarray) -> bytes:
        if not samples.size or self._source is None:
            return b""
        self.raw.setdefault(self._source, []).append(samples)
        return self._shape(samples * self._gain)

    def _shape(self, samples: np.ndarray) -> bytes:
        if not self._speaking:
            span = _loud(samples)
            if span is None:
                return b""  # leading silence: dropped
            samples = ramp(samples[max(0, span[0] - self._fade):].copy(), self._fade, True)
            self._speaking = True
        pending = np.concatenate((self._pending, samples.astype(np.float32, copy=False)))
        span = _loud(pending)
        # Keep back the silence after the last loud sample (it may be a trailing one) and
        # the FADE_S before it (it may be where a backend dies mid-word).
        cut = span[1] - self._fade if span is not None else 0
        if cut <= 0:
            self._pending = pending
            return b""
        self._pending = pending[cut:]
        return self._encode(pending[:cut])

    def _close_source(self) -> bytes:
        if self._source is None:
            return b""
        out = self._push(self._converter.flush_float())
        pending, self._pending = self._pending, np.zeros(0, dtype=np.float32)
        span = _loud(pending)
        if span is None:
            return out
        end = min(pending.size, span[1] + self._fade)
        return out + self._encode(ramp(pending[:end].copy(), self._fade, False))

    def _encode(self, samples: np.ndarray, bound: np.ndarray | None = None) -> bytes:
        """`bound`: at least abs(samples), sample by sample (see `limit`)."""
        if not self.loudness.enabled:
            return self._converter.encode(samples)
        return self._converter.encode(limit(samples, bound), within=True)


def silence(fmt: AudioFormat, seconds: float) -> bytes:
    """`seconds` of the stream's silence (pauses between sentences, the lead-in)."""
    return bytes(round(seconds * fmt.rate) * fmt.width * fmt.channels)

