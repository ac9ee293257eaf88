"""espeak-ng through ctypes: the offline voice that makes a fresh install always talk.

The library (shipped with its data by the `espeakng-loader` wheel) keeps global state, so
every call into it, initialisation included, runs on one process-wide single-thread
executor: syntheses are serialised however many backend instances or connections exist.
It is fast (a sentence in a few ms), so serialising costs nothing noticeable.

`AUDIO_OUTPUT_SYNCHRONOUS` makes `espeak_Synth` call our callback with each short block
of 22,050 Hz int16 as it is produced; the callback hands the block straight to the event
loop, so audio leaves before the sentence is finished, and returns 1 to abort when the
utterance is cancelled. Output is not bit-exact between calls (the wave generator keeps
phase and pitch-flutter state from the previous sentence); lengths differ by a few
samples. espeak-ng is GPL-3 (loaded dynamically, not bundled here).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..settings import Settings
from .base import (
    Backend,
    BackendError,
    BackendUnavailable,
    Chunk,
    Pcm,
    SynthesisCancelled,
    Utterance,
    Voice,
    VoiceNotFound,
    stream_from_thread,
)

_LOGGER = logging.getLogger(__name__)

# speak_lib.h constants
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000  # report errors instead of calling exit()
POS_CHARACTER = 1
CHARS_UTF8 = 1
ENDPAUSE = 0x1000  # a clause pause after the sentence: natural gaps between sentences
EE_OK = 0
BUFFER_MS = 50  # callback block length; short blocks = earlier first audio

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _EspeakVoice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # (priority byte, NUL-terminated name)*, then a 0 byte
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


# Dialect codes that espeak spells like regions ("ca-ba" is not Bosnia, "ru-cl" not Chile).
_LANGUAGE_OVERRIDES = {"ca-ba": "ca", "ca-nw": "ca", "ca-va": "ca", "ru-cl": "ru"}
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


def _parse_languages(address: int | None) -> list[str]:
    languages: list[str] = []
    if not address:
        return languages
    pos = address
    while ctypes.string_at(pos, 1)[0] != 0:  # priority byte, 0 terminates
        name = ctypes.string_at(pos + 1)
        languages.append(name.decode("utf-8", "replace"))
        pos += 1 + len(name) + 1
    return languages


@dataclass(frozen=True)
class _VoiceEntry:
    voice: Voice
    identifier: str


def _voice_entries(raw: list[tuple[str, str, list[str]]]) -> list[_VoiceEntry]:
    """(description, identifier, espeak languages) → named voices. The name is the voice's
    own language tag as espeak spells it ("en-us", "en-gb-x-rp"), unique per voice."""
    entries: list[_VoiceEntry] = []
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
            tag = normalize_language(lang)
            if tag and tag not in normalized:
                normalized.append(tag)
        # A bare "en" next to "en-US" says nothing more and clutters Home Assistant's list.
        languages = tuple(
            tag for tag in normalized
            if "-" in tag or not any(o.startswith(tag + "-") for o in normalized)
        )
        entries.append(
            _VoiceEntry(
                Voice(name=name, languages=languages, description=f"espeak-ng {description}"),
                identifier,
            )
        )
    return entries


# --- the library, confined to one thread -----------------------------------------

_EXECUTOR: ThreadPoolExecutor | None = None
_EXECUTOR_LOCK = threading.Lock()


def espeak_executor() -> ThreadPoolExecutor:
    """The one thread every espeak-ng call in this process runs on."""
    global _EXECUTOR
    with _EXECUTOR_LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="espeak")
        return _EXECUTOR


def _library_paths() -> tuple[str, str]:
    try:
        import espeakng_loader
    except ImportError as exc:
        raise BackendUnavailable(
            "espeak-ng is not installed (pip install espeakng-loader)", backend="espeak"
        ) from exc
    try:
        return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
    except RuntimeError as exc:  # the wheel's data directory is missing
        raise BackendUnavailable(f"espeak-ng data not found: {exc}", backend="espeak") from exc


class _Engine:
    """ctypes binding of one loaded libespeak-ng. Every method runs on `espeak_executor()`."""

    def __init__(self, lib_path: str, data_path: str) -> None:
        try:
            lib = ctypes.CDLL(lib_path)  # RTLD_LOCAL: Piper's own static copy stays separate
        except OSError as exc:
            raise BackendUnavailable(
                f"cannot load espeak-ng library {lib_path}: {exc}", backend="espeak"
            ) from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_EspeakVoice))
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int

        rate = lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, BUFFER_MS, data_path.encode(), INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise BackendUnavailable(
                f"espeak-ng failed to initialise with data {data_path} (code {rate})",
                backend="espeak",
            )
        self.lib = lib
        self.rate = rate
        # Kept referenced for the process lifetime: the library holds the raw pointer.
        self._callback = _SYNTH_CALLBACK(self._on_audio)
        lib.espeak_SetSynthCallback(self._callback)
        self._sink: Callable[[bytes], None] | None = None
        self._should_stop: Callable[[], bool] = lambda: False
        self._voice: str | None = None
        self.entries = _voice_entries(self._list_voices())

    def _list_voices(self) -> list[tuple[str, str, list[str]]]:
        found: list[tuple[str, str, list[str]]] = []
        array = self.lib.espeak_ListVoices(None)
        i = 0
        while array and array[i]:
            v = array[i].contents
            found.append((
                (v.name or b"").decode("utf-8", "replace").strip(),
                (v.identifier or b"").decode("utf-8", "replace"),
                _parse_languages(v.languages),
            ))
            i += 1
        return found

    def _on_audio(self, wav: Any, numsamples: int, _events: Any) -> int:
        try:
            if self._should_stop():
                return 1
            if numsamples > 0 and wav and self._sink is not None:
                self._sink(ctypes.string_at(wav, numsamples * 2))
            return 0
        except Exception:  # never let an exception unwind into C
            _LOGGER.exception("espeak-ng audio callback failed")
            return 1

    def speak(
        self,
        text: str,
        identifier: str,
        sink: Callable[[bytes], None],
        should_stop: Callable[[], bool],
    ) -> None:
        if identifier != self._voice:
            if self.lib.espeak_SetVoiceByName(identifier.encode()) != EE_OK:
                self._voice = None
                raise VoiceNotFound(f"espeak-ng cannot load voice {identifier}", backend="espeak")
            self._voice = identifier
        data = text.encode("utf-8") + b"\0"
        self._sink, self._should_stop = sink, should_stop
        try:
            result = self.lib.espeak_Synth(
                data, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8 | ENDPAUSE, None, None
            )
        finally:
            self._sink, self._should_stop = None, lambda: False
        if result != EE_OK and not should_stop():
            raise BackendError(f"espeak-ng synthesis failed (code {result})", backend="espeak")


_ENGINES: dict[tuple[str, str], _Engine] = {}


def _load_engine(lib_path: str, data_path: str) -> _Engine:
    """Runs on the espeak thread; a library is initialised once per process."""
    key = (lib_path, data_path)
    if key not in _ENGINES:
        _ENGINES[key] = _Engine(lib_path, data_path)
    return _ENGINES[key]


# --- the backend ---------------------------------------------------------------------



class EspeakBackend(Backend):
    name = "espeak"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: _Engine | None = None
        self._entries: dict[str, _VoiceEntry] = {}

    async def start(self) -> None:
        lib_path, data_path = _library_paths()
        loop = asyncio.get_running_loop()
        try:
            engine = await loop.run_in_executor(
                espeak_executor(), _load_engine, lib_path, data_path
            )
        except BackendError:
            raise
        except Exception as exc:  # anything else from ctypes is still "unusable"
            raise BackendUnavailable(
                f"espeak-ng failed to start: {exc}", backend=self.name
            ) from exc
        self._engine = engine
        self._entries = {e.voice.name: e for e in engine.entries}
        if not self._entries:
            raise BackendUnavailable("espeak-ng lists no voices", backend=self.name)
        wanted = self.settings.espeak_voice
        if not wanted or super().find_voice(wanted) is None:
            _LOGGER.warning(
                "espeak voice %r not found; using %s", self.settings.espeak_voice,
                self.default_voice.name if self.default_voice else "none",
            )

    @property
    def sample_rate(self) -> int:
        return self._engine.rate if self._engine else 22050

    def voices(self) -> list[Voice]:
        return [e.voice for e in self._entries.values()]

    @property
    def default_voice(self) -> Voice | None:
        wanted = self.settings.espeak_voice
        return (
            (super().find_voice(wanted) if wanted else None)
            or (super().find_voice(language=self.settings.language)
                if self.settings.language else None)
            or super().default_voice
        )

    def find_voice(self, name: str | None = None, language: str | None = None) -> Voice | None:
        """Also accepts espeak's identifier ("gmw/en-US") or description."""
        voice = super().find_voice(name, language)
        if voice is None and name:
            lowered = name.lower()
            for entry in self._entries.values():
                if lowered in (entry.identifier.lower(), entry.voice.description.lower(),
                               entry.voice.description.lower().removeprefix("espeak-ng ")):
                    return entry.voice
        return voice

    async def synthesize(
        self, text: str, voice: Voice, speaker: str | None, utterance: Utterance
    ) -> AsyncIterator[Chunk]:
        """Yields 22,050 Hz mono int16 blocks as espeak-ng produces them. `speaker` is
        ignored. Raises SynthesisCancelled when `utterance.cancel` cut the sentence short."""
        engine = self._engine
        if engine is None:
            raise BackendUnavailable("espeak-ng is not started", backend=self.name)
        entry = self._entries.get(voice.name)
        if entry is None:
            raise VoiceNotFound(f"espeak-ng has no voice {voice.name!r}", backend=self.name)
        cancel = utterance.cancel
        if cancel.cancelled:
            raise SynthesisCancelled("cancelled before espeak-ng started", backend=self.name)
        if not text.strip():
            return

        def produce(emit: Callable[[bytes], None], should_stop: Callable[[], bool]) -> None:
            # espeak's callback hands each block to `emit` and aborts once `should_stop`.
            engine.speak(text, entry.identifier, emit, should_stop)

        try:
            async for block in stream_from_thread(produce, cancel, espeak_executor()):
                yield Pcm(block, engine.rate)
        except BackendError:  # SynthesisCancelled included: a cut-short sentence
            raise
        except Exception as exc:
            raise BackendError(f"espeak-ng failed: {exc}", backend=self.name) from exc

    async def stop(self) -> None:
        # The library and its thread are process-wide (other instances may use them).
        self._engine = None
        self._entries = {}
