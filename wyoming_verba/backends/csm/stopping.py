"""When a CSM sentence ends. Pure logic on codes and levels, no torch.

CSM ends a sentence with an end frame (first 31 codebooks zero) but sometimes never emits
one: it then loops on a few sounds or hums near-silence until the cap. These rules bound it.
A sentence that any rule but the end frame stopped was cut: `StopState.cut` says so, and
the backend neither keeps it as context nor lets it end without a fade."""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass

from ...text.normalize import normalize

FRAME_RATE = 12.5  # Mimi frames per second (80 ms each)
# Generous speaking-time budget, counted in spoken words after numbers, symbols and
# abbreviations are expanded ("555-1234" is seven words, not eight characters): 2 s plus
# 0.8 s per word is about twice normal speech (150 words a minute); a long word counts as
# one word per LETTERS_PER_WORD letters.
CAP_BASE_S = 2.0
CAP_PER_WORD_S = 0.8
LETTERS_PER_WORD = 8
# Repetition under sampling: the frames never repeat exactly (31 codebooks are sampled
# afresh), but a stuck model's codebook 0 (the semantic code) cycles through a few values.
REPEAT_FRAMES = 30  # window: 2.4 s, longer than the silence rule, so silence wins on silence
REPEAT_FEW = 3  # the 3 commonest codebook-0 values filling REPEAT_SHARE of the window ...
REPEAT_MAX_PERIOD = 8  # ... or a cycle of up to 8 frames (640 ms) followed that much: stuck
REPEAT_SHARE = 0.8
SILENCE_FRAMES = 25  # 2 s below SILENCE_RMS after speech started: it is done talking
# (--csm-max-sentence-seconds and --csm-end-silence set the cap's ceiling and the silence)
SILENCE_RMS = 0.003  # about -50 dBFS
CUT_REASONS = ("cap", "repeat", "silence")

_WORD = re.compile(r"[^\W_]+")


def spoken_words(text: str, language: str = "en-US") -> float:
    """How many words `text` is when spoken, long words counting for more. Digits left
    over (a language normalisation does not cover) count one word each."""
    words = _WORD.findall(normalize(text.strip(), language))
    return sum(float(len(word)) if word.isdigit() else max(1.0, len(word) / LETTERS_PER_WORD)
               for word in words)


def frame_cap(text: str, max_seconds: float = 45.0, language: str = "en-US") -> int:
    """Most frames a sentence of this text may take."""
    seconds = min(max_seconds, CAP_BASE_S + CAP_PER_WORD_S * spoken_words(text, language))
    return max(1, round(seconds * FRAME_RATE))


def is_end_frame(codes: Sequence[int]) -> bool:
    """The model's end-of-audio frame: the first 31 codebooks are all zero."""
    return all(c == 0 for c in list(codes)[:-1])


def is_repetitive(semantic: Sequence[int]) -> bool:
    """A window of codebook-0 values that only a stuck model produces: a few values
    (a hum, a syllable on a loop) filling most of it, or one short cycle followed almost
    throughout. Speech changes its semantic code nearly every frame."""
    n = len(semantic)
    few = sum(count for _, count in Counter(semantic).most_common(REPEAT_FEW))
    if few >= REPEAT_SHARE * n:
        return True
    for period in range(1, min(REPEAT_MAX_PERIOD, n - 1) + 1):
        same = sum(semantic[i] == semantic[i - period] for i in range(period, n))
        if same >= REPEAT_SHARE * (n - period):
            return True
    return False


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
        self._semantic: deque[int] = deque(maxlen=max(2, rules.repeat_frames))
        self._quiet = 0
        self._heard_speech = False

    @property
    def cut(self) -> bool:
        """A rule other than the model's own end frame stopped the sentence."""
        return self.reason in CUT_REASONS

    @property
    def heard_speech(self) -> bool:
        return self._heard_speech

    @property
    def trailing_quiet(self) -> int:
        """Decoded frames of near-silence since the last speech."""
        return self._quiet

    def on_frame(self, codes: Sequence[int]) -> bool:
        """Feed a generated frame (before it is played). True = stop, and do not play it
        when `reason == "end"`."""
        frame = [int(c) for c in codes]
        if is_end_frame(frame):
            self.reason = "end"
            return True
        self.frames += 1
        self._semantic.append(frame[0])
        if len(self._semantic) == self._semantic.maxlen and is_repetitive(self._semantic):
            self.reason = "repeat"
            return True
        if self.frames >= self.rules.max_frames:
            self.reason = "cap"
            return True
        return False

    def on_level(self, rms: float) -> bool:
        """Feed the RMS of one decoded frame. True = stop (long silence after speech).
        Frames decoded after another rule fired still count towards `trailing_quiet`."""
        if rms >= self.rules.silence_rms:
            self._heard_speech = True
            self._quiet = 0
            return False
        if not self._heard_speech:  # leading silence is breathing room, not an ending
            return False
        self._quiet += 1
        if self._quiet >= self.rules.silence_frames and self.reason is None:
            self.reason = "silence"
            return True
        return False
