"""House voices: a reference clip made once for a CSM voice that has none, and kept.

csm-1b is a base model: without a reference clip each reply gets a new random speaker,
whatever the speaker id. So for every configured voice without a clip the backend has the
model speak REFERENCE_TEXT once (a fixed seed; the next seed when the take fails
`check_reference`), keeps the take with its transcript in `<data dir>/csm-voices/`, and
prompts that voice with it from then on: across replies and restarts, one person.

A house voice can also be a take from another backend's voice (`wyoming-verba csm-voices
make NAME --from piper:en_US-joe-medium`): CSM then continues in that voice, so failing
over to the other backend keeps a similar-sounding person.

The store is a plain voices directory (`<name>.wav` + `<name>.txt` + `<name>.json`), the
same layout `--csm-voices DIR` reads; the JSON also records how the take was made."""

from __future__ import annotations

import json
import logging
import re
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...pcm import float_to_int16
from .voices import DEFAULT_LANGUAGE, SAMPLE_RATE, VoicesFileError, VoiceSpec, read_clip

_LOGGER = logging.getLogger(__name__)

STORE_DIR = "csm-voices"  # under the data directory
# About seven seconds of ordinary speech with varied sounds: enough for the model to hold
# a voice, short enough to leave the 2048-token context to the reply.
REFERENCE_TEXT = ("Hello, it's nice to meet you. I'll be reading your messages, the news "
                  "and the weather, and I'm happy to answer any questions you have today.")
FIRST_SEED = 1  # the take's seed when --csm-seed is not set; each retry takes the next
ATTEMPTS = 3
MIN_S = 3.0  # shorter than this, the model skipped most of the text
MAX_S = 15.0  # longer, it rambled (and a long prompt slows every sentence)
FRAME_S = 0.08
SILENCE_RMS = 0.003  # as the stop rules: about -50 dBFS per 80 ms frame
MIN_SPEECH_SHARE = 0.6  # frames above SILENCE_RMS between the first and last speech
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class HouseVoice:
    name: str
    speaker: int
    audio: Path
    text: str
    language: str = DEFAULT_LANGUAGE
    seed: int | None = None
    source: str = "csm"  # "csm" or the backend and voice whose take it is
    model: str = ""  # the CSM model that made it ("" for another backend's take)

    @property
    def seconds(self) -> float:
        with wave.open(str(self.audio), "rb") as wav:
            return wav.getnframes() / wav.getframerate()

    def spec(self, base: VoiceSpec | None = None) -> VoiceSpec:
        """The voice prompted with this take (keeping a configured voice's own fields)."""
        if base is None:
            return VoiceSpec(self.name, self.speaker, self.audio, self.text, self.language,
                             f"CSM-1b house voice {self.name} ({self.source})")
        return VoiceSpec(base.name, base.speaker, self.audio, self.text, base.language,
                         base.description)


def frame_levels(samples: np.ndarray) -> np.ndarray:
    """RMS of each 80 ms frame."""
    n = int(FRAME_S * SAMPLE_RATE)
    frames = samples[: len(samples) // n * n].reshape(-1, n).astype(np.float64)
    return np.sqrt((frames ** 2).mean(axis=1)) if len(frames) else np.zeros(0)


def trim_silence(samples: np.ndarray) -> np.ndarray:
    """Leading and trailing near-silent frames dropped (whole 80 ms frames)."""
    loud = np.flatnonzero(frame_levels(samples) >= SILENCE_RMS)
    if not loud.size:
        return samples[:0]
    n = int(FRAME_S * SAMPLE_RATE)
    return samples[loud[0] * n: (loud[-1] + 1) * n]


def check_reference(samples: np.ndarray, reason: str | None = "end") -> str | None:
    """What is wrong with a take as a voice prompt, or None when it will do."""
    if reason not in ("end", "silence"):
        return f"the model did not finish the text (stopped by the {reason} rule)"
    speech = trim_silence(samples)
    seconds = len(speech) / SAMPLE_RATE
    if seconds < MIN_S:
        return f"{seconds:.1f} s of speech, less than {MIN_S:.0f} s"
    if seconds > MAX_S:
        return f"{seconds:.1f} s of speech, more than {MAX_S:.0f} s"
    share = float((frame_levels(speech) >= SILENCE_RMS).mean())
    if share < MIN_SPEECH_SHARE:
        return f"mostly silence ({share:.0%} of it speech)"
    return None


class HouseVoiceStore:
    """The house voices in one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _paths(self, name: str) -> tuple[Path, Path, Path]:
        return (self.root / f"{name}.wav", self.root / f"{name}.txt",
                self.root / f"{name}.json")

    def get(self, name: str) -> HouseVoice | None:
        """The stored voice, or None (absent, or its files unreadable: made again)."""
        wav, txt, meta_path = self._paths(name)
        if not (wav.is_file() and txt.is_file() and meta_path.is_file()):
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            seed = meta.get("seed")
            return HouseVoice(name, int(meta.get("speaker", 0)), wav,
                              txt.read_text(encoding="utf-8").strip(),
                              str(meta.get("language", DEFAULT_LANGUAGE)),
                              None if seed is None else int(seed),
                              str(meta.get("source", "csm")), str(meta.get("model", "")))
        except (OSError, UnicodeDecodeError, ValueError, TypeError, AttributeError) as exc:
            _LOGGER.warning("house voice %s in %s is unreadable (%s)", name, self.root, exc)
            return None

    def all(self) -> list[HouseVoice]:
        if not self.root.is_dir():
            return []
        names = sorted(p.stem for p in self.root.glob("*.json"))
        return [voice for name in names if (voice := self.get(name)) is not None]

    def save(self, name: str, samples: np.ndarray, *, text: str, speaker: int,
             language: str = DEFAULT_LANGUAGE, seed: int | None = None, source: str = "csm",
             model: str = "") -> HouseVoice:
        """Keep a take (float32 24 kHz mono; silence at either end is trimmed). The JSON
        is written last, so a half-written voice is not found and is made again."""
        if not NAME.match(name):
            raise VoicesFileError(f"{name!r}: a voice name is letters, digits, '.', '_', '-'")
        self.root.mkdir(parents=True, exist_ok=True)
        wav_path, txt, meta = self._paths(name)
        meta.unlink(missing_ok=True)
        tmp = wav_path.with_suffix(".wav.tmp")
        with wave.open(str(tmp), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(SAMPLE_RATE)
            wav.writeframes(float_to_int16(trim_silence(samples)).tobytes())
        tmp.replace(wav_path)
        txt.write_text(text + "\n", encoding="utf-8")
        meta.write_text(json.dumps({"speaker": speaker, "language": language, "seed": seed,
                                    "source": source, "model": model}, indent=2) + "\n",
                        encoding="utf-8")
        voice = self.get(name)
        assert voice is not None, "just written"
        return voice

    def delete(self, name: str) -> bool:
        found = False
        for path in self._paths(name):
            if path.is_file():
                path.unlink()
                found = True
        return found

    @staticmethod
    def samples(voice: HouseVoice) -> np.ndarray:
        return read_clip(voice.audio)
