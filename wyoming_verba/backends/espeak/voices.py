"""espeak-ng's voices as Home Assistant should see them: one name per voice and its
languages as BCP-47 tags."""

from __future__ import annotations

from dataclasses import dataclass

from ...languages import bcp47
from ..base import Voice

# Dialect codes that espeak spells like regions ("ca-ba" is not Bosnia, "ru-cl" not Chile).
_LANGUAGE_OVERRIDES = {"ca-ba": "ca", "ca-nw": "ca", "ca-va": "ca", "ru-cl": "ru",
                       "piqd": "tlh"}  # espeak's Klingon; ISO 639-2 says tlh
_HIDDEN_VOICES = {"art/xex"}  # espeak-ng's own test language


def normalize_language(code: str) -> str:
    """espeak's lowercase tags → BCP-47 style: "en-us" → "en-US", "en-gb-x-rp" → "en-GB",
    "zh-yue" → "yue", "fa-latn" → "fa-Latn", "vi-vn-x-central" → "vi-VN".

    Keeps language, script and region; drops variants ("scotland", "nyc") and private use
    ("x-…") so that Home Assistant groups the voice under a language it knows."""
    code = code.strip().replace("_", "-").lower()
    code = _LANGUAGE_OVERRIDES.get(code, code)
    parts = [p for p in code.split("-") if p]
    if not parts:
        return ""
    out = [parts[0]]
    rest = parts[1:]
    if rest and len(rest[0]) == 3 and rest[0].isalpha():
        out = [rest[0]]  # an extended language subtag is the canonical language: zh-yue → yue
        rest = rest[1:]
    for part in rest:
        if part == "x":
            break
        if len(part) == 4 and part.isalpha():
            out.append(part.title())  # script
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            out.append(part.upper())  # region
        # anything else is a variant: dropped
    return "-".join(out)


@dataclass(frozen=True)
class VoiceEntry:
    voice: Voice
    identifier: str


def voice_entries(raw: list[tuple[str, str, list[str]]]) -> list[VoiceEntry]:
    """(description, identifier, espeak languages) → named voices. The name is the voice's
    own language tag as espeak spells it ("en-us", "en-gb-x-rp"), unique per voice."""
    entries: list[VoiceEntry] = []
    used: set[str] = set()
    for description, identifier, espeak_langs in raw:
        if identifier in _HIDDEN_VOICES:
            continue
        base_name = identifier.rsplit("/", 1)[-1].lower()
        name = espeak_langs[0].lower() if espeak_langs else base_name
        if name in used:
            name = base_name
        if name in used:
            continue
        used.add(name)
        normalized: list[str] = []
        for lang in espeak_langs:
            tag = bcp47(normalize_language(lang))  # None for espeak's invented codes ("py")
            if tag and tag not in normalized:
                normalized.append(tag)
        if not normalized:
            continue  # no language Home Assistant could offer it under
        # A bare "en" next to "en-US" says nothing more and clutters Home Assistant's list.
        languages = tuple(
            tag for tag in normalized
            if "-" in tag or not any(o.startswith(tag + "-") for o in normalized)
        )
        entries.append(
            VoiceEntry(
                Voice(name=name, languages=languages, description=f"espeak-ng {description}"),
                identifier,
            )
        )
    return entries
