"""OpenAI's `speed` (0.25-4.0): time-scale modification of the stream's PCM without
changing its pitch, block by block (WSOLA: windowed frames taken from the input at
`speed` times the output's pace, each shifted within a small tolerance to where it
best continues the previous frame's waveform, and overlap-added)."""

from __future__ import annotations

import numpy as np

FRAME_S = 0.030  # analysis frame: long enough to hold a few pitch periods
TOLERANCE_S = 0.008  # how far a frame may move to line up with the previous one


class TimeStretch:
    """Feed int16 mono PCM in any block sizes; get the same speech `speed` times faster
    (0.5 = half as fast). The output totals len(input) / speed samples."""

    def __init__(self, speed: float, rate: int) -> None:
        self.speed = speed
        self.frame = max(int(rate * FRAME_S) // 2 * 2, 4)
        self.hop = self.frame // 2  # synthesis hop: 50 % overlap, Hann windows sum to 1
        self.tolerance = max(int(rate * TOLERANCE_S), 1)
        self.window = np.hanning(self.frame + 2)[1:-1].astype(np.float32)
        self._window_sum = self.window[: self.hop] + self.window[self.hop:]
        # Input kept from `_offset` on; the first frame may reach `tolerance` before 0.
        self._input = np.zeros(self.tolerance, dtype=np.float32)
        self._offset = -self.tolerance
        self._position = 0.0  # where the next frame would start without the search
        self._natural: np.ndarray | None = None  # what would follow the last frame
        self._overlap = np.zeros(self.hop, dtype=np.float32)
        self._consumed = 0  # input samples seen
        self._produced = 0  # output samples given out

    def feed(self, pcm: bytes) -> bytes:
        samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
        self._consumed += len(samples)
        self._input = np.concatenate([self._input, samples.astype(np.float32)])
        return self._run(final=False)

    def flush(self) -> bytes:
        """The rest, padded with silence to the length the speed asks for."""
        padding = np.zeros(self.frame * 2 + self.tolerance + int(self.hop * self.speed) + 1,
                           dtype=np.float32)
        self._input = np.concatenate([self._input, padding])
        return self._run(final=True)

    def _run(self, *, final: bool) -> bytes:
        wanted = round(self._consumed / self.speed) if final else None
        out: list[np.ndarray] = []
        frame, hop, tol = self.frame, self.hop, self.tolerance
        while True:
            if wanted is not None and self._produced >= wanted:
                break
            start = int(round(self._position)) - self._offset  # index into _input
            if start + tol + hop + frame > len(self._input):
                break  # not enough input yet for this frame and its continuation
            lo = max(start - tol, 0)
            if self._natural is None:
                best = start
            else:
                region = self._input[lo : start + tol + frame]
                score = np.correlate(region, self._natural, mode="valid")
                best = lo + int(np.argmax(score))
            piece = self._input[best : best + frame] * self.window
            self._natural = self._input[best + hop : best + hop + frame]
            ready = (self._overlap + piece[:hop]) / self._window_sum
            self._overlap = piece[hop:].copy()
            if wanted is not None:
                ready = ready[: wanted - self._produced]
            out.append(ready)
            self._produced += len(ready)
            self._position += hop * self.speed
            self._trim()
        if not out:
            return b""
        audio = np.clip(np.concatenate(out), -32768, 32767)
        return audio.astype("<i2").tobytes()

    def _trim(self) -> None:
        """Drop input no later frame can reach."""
        keep_from = int(self._position) - self._offset - self.tolerance - self.hop
        if keep_from > 4 * self.frame:
            self._input = self._input[keep_from:]
            self._offset += keep_from
