"""libespeak-ng through ctypes: engines, each confined to its own thread.

The library keeps its state in globals, so one loaded copy speaks one sentence at a time,
and every call into it, initialisation included, runs on that engine's thread
(`espeak_executor(index)`). Engine 0 is the library file itself; each further engine loads
a private copy of the file (the dynamic loader maps a file under another name again, with
its own globals), so several sentences can be spoken at once on several cores.
`AUDIO_OUTPUT_SYNCHRONOUS` makes `espeak_Synth` call our callback with each block of int16
audio as it is produced; returning 1 from it aborts."""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from ...workers import Workers
from ..base import BackendError, BackendUnavailable, VoiceNotFound
from .voices import voice_entries

_LOGGER = logging.getLogger(__name__)

# speak_lib.h constants
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000  # report errors instead of calling exit()
POS_CHARACTER = 1
CHARS_UTF8 = 1
ENDPAUSE = 0x1000  # a clause pause after the sentence: natural gaps between sentences
EE_OK = 0
# Callback block length. espeak-ng makes a second of audio in about a millisecond, so longer
# blocks cost first audio next to nothing, and each block is a trip through Python (the GIL)
# for the engine's thread: 1 s blocks served 15-35 % more requests under load than 200 ms.
BUFFER_MS = 1000
MAX_ENGINES = 4  # independent copies of the library at most (one per core)

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


_EXECUTORS: dict[int, Workers] = {}
_EXECUTOR_LOCK = threading.Lock()


def espeak_executor(index: int = 0) -> Workers:
    """The one thread every call into engine `index` runs on."""
    with _EXECUTOR_LOCK:
        if index not in _EXECUTORS:
            _EXECUTORS[index] = Workers(1, f"espeak-{index}")
        return _EXECUTORS[index]


def engine_count(cores: int) -> int:
    """Engines worth loading for this many cores: one sentence per core at once."""
    return max(1, min(cores, MAX_ENGINES))


def library_paths() -> tuple[str, str]:
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


class Engine:
    """ctypes binding of one loaded libespeak-ng. Every method runs on its engine's thread."""

    def __init__(self, lib_path: str, data_path: str, buffer_ms: int = BUFFER_MS) -> None:
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
            AUDIO_OUTPUT_SYNCHRONOUS, buffer_ms, data_path.encode(), INITIALIZE_DONT_EXIT
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
        self._loaded_identifier: str | None = None
        self.entries = voice_entries(self._list_voices())

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
        if identifier != self._loaded_identifier:
            if self.lib.espeak_SetVoiceByName(identifier.encode()) != EE_OK:
                self._loaded_identifier = None
                raise VoiceNotFound(f"espeak-ng cannot load voice {identifier}", backend="espeak")
            self._loaded_identifier = identifier
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


_ENGINES: dict[tuple[str, str, int], Engine] = {}


def load_engine(lib_path: str, data_path: str, index: int = 0,
                buffer_ms: int = BUFFER_MS) -> Engine:
    """Engine `index` of this library, loaded once per process (the first load sets its
    block length). Runs on `espeak_executor(index)`."""
    key = (lib_path, data_path, index)
    if key not in _ENGINES:
        if index == 0:
            _ENGINES[key] = Engine(lib_path, data_path, buffer_ms)
        else:
            _ENGINES[key] = _load_copy(lib_path, data_path, index, buffer_ms)
    return _ENGINES[key]


def _load_copy(lib_path: str, data_path: str, index: int, buffer_ms: int) -> Engine:
    """An engine on a private copy of the library file. Once mapped, the copy is not needed
    on disk (Linux keeps the mapping), so it is removed at once."""
    folder = tempfile.mkdtemp(prefix="verba-espeak-")
    try:
        copy = os.path.join(folder, f"{index}-{os.path.basename(lib_path)}")
        shutil.copyfile(lib_path, copy)
        return Engine(copy, data_path, buffer_ms)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
