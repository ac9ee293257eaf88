"""CSM voices: a speaker id plus an optional reference clip and its transcript.

`--csm-voices` points at either
- a directory: `<name>.wav` + `<name>.txt` (the clip's transcript) and optionally
  `<name>.json` (`{"speaker": 0, "language": "en-US", "description": "..."}`);
  a `<name>.json` alone defines a named voice without a clip; or
- a JSON file: `{"voices": {"<name>": {"speaker": 0, "audio": "clip.wav",
  "text": "transcript", "language": "en-US", "description": "..."}}}`
  (paths relative to the file).
Raw speaker ids need no file: voice `speaker-N` is speaker N without a clip.
"""

from __future__ import annotations

import json
import logging
import re
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...audio import resample
from ...pcm import Pcm, to_float_mono
from ..base import VoiceNotFound

_LOGGER = logging.getLogger(__name__)

SAMPLE_RATE = 24000
MAX_CLIP_S = 20.0  # longer prompts eat the 2048-token context and slow every sentence
DEFAULT_LANGUAGE = "en-US"  # CSM-1b speaks English
RAW_SPEAKER = re.compile(r"^speaker-(\d+)$")


class VoicesFileError(ValueError):
    """The voices file/directory is malformed; the message names the file."""


@dataclass(frozen=True)
class VoiceSpec:
    name: str
    speaker: int = 0
    audio: Path | None = None
    text: str = ""
    language: str = DEFAULT_LANGUAGE
    description: str = ""

    @property
    def has_clip(self) -> bool:
        return self.audio is not None


def raw_voice(speaker: int) -> VoiceSpec:
    return VoiceSpec(f"speaker-{speaker}", speaker, description=f"CSM speaker {speaker}")


def parse_raw(name: str) -> VoiceSpec | None:
    match = RAW_SPEAKER.match(name.strip().lower())
    return raw_voice(int(match.group(1))) if match else None


def load_voices(path: Path | None) -> list[VoiceSpec]:
    """Read the voices directory or file. Raises VoicesFileError naming what is wrong."""
    if path is None:
        return []
    path = path.expanduser()
    if path.is_dir():
        return _from_directory(path)
    if path.is_file():
        return _from_file(path)
    raise VoicesFileError(f"--csm-voices {path}: no such file or directory")


def _spec(name: str, data: dict, base: Path, where: Path) -> VoiceSpec:
    if not isinstance(data, dict):
        raise VoicesFileError(f"{where}: voice {name!r} must be an object")
    try:
        speaker = int(data.get("speaker", 0))
    except (TypeError, ValueError):
        raise VoicesFileError(f"{where}: voice {name!r}: speaker must be an integer") from None
    audio = data.get("audio")
    text = str(data.get("text", "")).strip()
    clip = (base / audio) if audio else None
    if clip is not None and not clip.is_file():
        raise VoicesFileError(f"{where}: voice {name!r}: clip {clip} not found")
    if clip is not None and not text:
        raise VoicesFileError(f"{where}: voice {name!r}: a clip needs its transcript (text)")
    return VoiceSpec(
        name=name, speaker=speaker, audio=clip, text=text,
        language=str(data.get("language", DEFAULT_LANGUAGE)),
        description=str(data.get("description", "")),
    )


def _from_file(path: Path) -> list[VoiceSpec]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VoicesFileError(f"{path}: not a readable JSON voices file ({exc})") from None
    voices = data.get("voices") if isinstance(data, dict) else None
    if not isinstance(voices, dict):
        raise VoicesFileError(f'{path}: expected {{"voices": {{"<name>": {{...}}}}}}')
    return [_spec(str(name), spec, path.parent, path) for name, spec in voices.items()]


def _from_directory(path: Path) -> list[VoiceSpec]:
    names = sorted({p.stem for p in path.iterdir() if p.suffix.lower() in (".wav", ".json")})
    specs = []
    for name in names:
        meta_path, wav, txt = path / f"{name}.json", path / f"{name}.wav", path / f"{name}.txt"
        meta: dict = {}
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise VoicesFileError(f"{meta_path}: not valid JSON ({exc})") from None
        if wav.is_file():
            meta = {**meta, "audio": wav.name}
            if txt.is_file():
                meta["text"] = txt.read_text(encoding="utf-8")
        specs.append(_spec(name, meta, path, path))
    return specs


def read_clip(path: Path) -> np.ndarray:
    """A WAV file (8/16/32-bit PCM, any rate/channels) as float32 24 kHz mono."""
    try:
        with wave.open(str(path), "rb") as wav:
            pcm = Pcm(wav.readframes(wav.getnframes()), wav.getframerate(),
                      wav.getsampwidth(), wav.getnchannels())
    except (OSError, EOFError, wave.Error) as exc:
        raise VoicesFileError(f"{path}: not a PCM WAV file ({exc})") from None
    if pcm.rate != SAMPLE_RATE:
        pcm = resample(pcm, SAMPLE_RATE)
    samples = to_float_mono(pcm)
    if len(samples) > MAX_CLIP_S * SAMPLE_RATE:
        _LOGGER.warning("%s: clip longer than %.0f s, using its start", path, MAX_CLIP_S)
        samples = samples[: int(MAX_CLIP_S * SAMPLE_RATE)]
    if not len(samples):
        raise VoicesFileError(f"{path}: the clip is empty")
    return samples


def find(specs: list[VoiceSpec], name: str) -> VoiceSpec:
    for spec in specs:
        if spec.name == name or spec.name.lower() == name.lower():
            return spec
    raw = parse_raw(name)
    if raw is None:
        raise VoiceNotFound(f"CSM has no voice {name!r}", backend="csm")
    return raw
