"""When a CSM sentence ends. Pure logic on codes and levels, no torch.

CSM ends a sentence with an end frame (first 31 codebooks zero) but sometimes never emits
one: it then loops on one frame or hums near-silence until the cap. These rules bound it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

FRAME_RATE = 12.5  # Mimi frames per second (80 ms each)
# Generous speaking-time budget: 1.5 s plus 0.1 s per character is ~2x normal speech.
CAP_BASE_S = 1.5
CAP_PER_CHAR_S = 0.1
REPEAT_FRAMES = 10  # 0.8 s of one identical frame: the model is stuck
SILENCE_FRAMES = 25  # 2 s below SILENCE_RMS after speech started: it is done talking
# (--csm-max-sentence-seconds and --csm-end-silence set the cap's ceiling and the silence)
SILENCE_RMS = 0.003  # about -50 dBFS


def frame_cap(text: str, max_seconds: float = 45.0) -> int:
    """Most frames a sentence of this text may take."""
    seconds = min(max_seconds, CAP_BASE_S + CAP_PER_CHAR_S * len(text.strip()))
    return max(1, round(seconds * FRAME_RATE))


def is_end_frame(codes: Sequence[int]) -> bool:
    """The model's end-of-audio frame: the first 31 codebooks are all zero."""
    return all(c == 0 for c in list(codes)[:-1])


@dataclass
class StopRules:
    max_frames: int
    repeat_frames: int = REPEAT_FRAMES
    silence_frames: int = SILENCE_FRAMES
    silence_rms: float = SILENCE_RMS


class StopState:
    """Tracks one sentence; `reason` is set once a rule fires."""

    def __init__(self, rules: StopRules) -> None:
        self.rules = rules
        self.frames = 0
        self.reason: str | None = None
        self._last: tuple[int, ...] | None = None
        self._repeats = 0
        self._quiet = 0
        self._heard_speech = False

    def on_frame(self, codes: Sequence[int]) -> bool:
        """Feed a generated frame (before it is played). True = stop, and do not play it
        when `reason == "end"`."""
        frame = tuple(int(c) for c in codes)
        if is_end_frame(frame):
            self.reason = "end"
            return True
        self.frames += 1
        self._repeats = self._repeats + 1 if frame == self._last else 1
        self._last = frame
        if self._repeats >= self.rules.repeat_frames:
            self.reason = "repeat"
            return True
        if self.frames >= self.rules.max_frames:
            self.reason = "cap"
            return True
        return False

    def on_level(self, rms: float) -> bool:
        """Feed the RMS of one decoded frame. True = stop (long silence after speech)."""
        if rms >= self.rules.silence_rms:
            self._heard_speech = True
            self._quiet = 0
            return False
        if not self._heard_speech:  # leading silence is breathing room, not an ending
            return False
        self._quiet += 1
        if self._quiet >= self.rules.silence_frames:
            self.reason = "silence"
            return True
        return False
