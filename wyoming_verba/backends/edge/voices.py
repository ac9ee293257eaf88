"""Edge's voice list: fetched from the service when reachable, cached on disk, with a
small built-in set for a first start without network."""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import edge_tts.voices

from ..base import Voice

_LOGGER = logging.getLogger(__name__)

CACHE_FILE = "edge-voices.json"

# What edge-tts accepts as a short voice name (data_classes.TTSConfig).
VOICE_NAME = re.compile(r"^([a-z]{2,})-([A-Z]{2,})-(.+Neural)$")

# Common voices, for a first start with no network and no cache. The service has ~320.
_BUILTIN = (
    ("en-US", "GuyNeural", "Male"), ("en-US", "JennyNeural", "Female"),
    ("en-US", "AriaNeural", "Female"), ("en-US", "ChristopherNeural", "Male"),
    ("en-US", "EmmaMultilingualNeural", "Female"), ("en-US", "AndrewMultilingualNeural", "Male"),
    ("en-GB", "SoniaNeural", "Female"), ("en-GB", "RyanNeural", "Male"),
    ("en-AU", "NatashaNeural", "Female"), ("en-CA", "ClaraNeural", "Female"),
    ("de-DE", "KatjaNeural", "Female"), ("de-DE", "ConradNeural", "Male"),
    ("fr-FR", "DeniseNeural", "Female"), ("fr-FR", "HenriNeural", "Male"),
    ("es-ES", "ElviraNeural", "Female"), ("es-ES", "AlvaroNeural", "Male"),
    ("es-MX", "DaliaNeural", "Female"), ("it-IT", "ElsaNeural", "Female"),
    ("it-IT", "DiegoNeural", "Male"), ("nl-NL", "ColetteNeural", "Female"),
    ("nl-NL", "MaartenNeural", "Male"), ("pt-BR", "FranciscaNeural", "Female"),
    ("pt-PT", "RaquelNeural", "Female"), ("pl-PL", "ZofiaNeural", "Female"),
    ("sv-SE", "SofieNeural", "Female"), ("da-DK", "ChristelNeural", "Female"),
    ("nb-NO", "PernilleNeural", "Female"), ("fi-FI", "NooraNeural", "Female"),
    ("ru-RU", "SvetlanaNeural", "Female"), ("uk-UA", "PolinaNeural", "Female"),
    ("tr-TR", "EmelNeural", "Female"), ("ja-JP", "NanamiNeural", "Female"),
    ("zh-CN", "XiaoxiaoNeural", "Female"), ("ko-KR", "SunHiNeural", "Female"),
    ("hi-IN", "SwaraNeural", "Female"), ("ar-SA", "ZariyahNeural", "Female"),
)


def entry(short_name: str, locale: str = "", gender: str = "") -> dict[str, Any]:
    """A voice-list entry in the service's own shape (the fields we use)."""
    if not locale:
        match = VOICE_NAME.match(short_name)
        locale = f"{match[1]}-{match[2]}" if match else ""
    return {"ShortName": short_name, "Locale": locale, "Gender": gender}


BUILTIN_VOICES: list[dict[str, Any]] = [entry(f"{loc}-{n}", loc, g) for loc, n, g in _BUILTIN]


def to_voice(item: dict[str, Any]) -> Voice:
    name = item["ShortName"]
    gender = item.get("Gender") or ""
    friendly = item.get("FriendlyName") or ""
    description = friendly or (f"{name} ({gender})" if gender else name)
    return Voice(
        name=name,
        languages=(item.get("Locale") or name.rsplit("-", 1)[0],),
        description=description,
    )


def _clean(items: Any) -> list[dict[str, Any]]:
    """Keep well-formed entries only: the list comes from the network or a file."""
    if not isinstance(items, list):
        raise ValueError("voice list is not a JSON list")
    out = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("ShortName"), str):
            if VOICE_NAME.match(item["ShortName"]):
                out.append({
                    k: item[k] for k in ("ShortName", "Locale", "Gender", "FriendlyName",
                                         "Status") if isinstance(item.get(k), str)
                })
    if not out:
        raise ValueError("voice list has no usable voices")
    return out


async def fetch() -> list[dict[str, Any]]:
    """The service's voice list; raises on any failure (the caller classifies it and
    bounds the time). Proxies come from the environment (edge-tts uses trust_env)."""
    return _clean(await edge_tts.voices.list_voices())


def load_cache(path: Path) -> list[dict[str, Any]] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return _clean(data["voices"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _LOGGER.warning("Ignoring unreadable Edge voice cache %s: %s", path, exc)
        return None


def save_cache(path: Path, voices: list[dict[str, Any]]) -> None:
    """Write atomically so a crash never leaves half a file. Failure only logs."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".edge-voices.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"fetched": time.time(), "voices": voices}, f)
        os.replace(tmp, path)
    except OSError as exc:
        _LOGGER.warning("Cannot write Edge voice cache %s: %s", path, exc)
