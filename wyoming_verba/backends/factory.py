"""Build backends by name: with chain.py, the only module that knows them all.

Heavy backends are imported lazily, so a core install (no torch, no piper) runs fine."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import NamedTuple

from ..settings import Settings
from .base import Backend

_LOGGER = logging.getLogger(__name__)

class Engine(NamedTuple):
    module: str  # imported only when the backend is built
    cls: str
    author: str  # attribution in `info`
    url: str
    extra: str = ""  # the pip extra that installs what it needs
    cli: str = ""  # module whose main(argv) is the `wyoming-verba <command>` of this engine


ENGINES: dict[str, Engine] = {
    "csm": Engine("wyoming_verba.backends.csm", "CsmBackend", "Sesame",
                  "https://huggingface.co/sesame/csm-1b", extra="csm",
                  cli="wyoming_verba.backends.csm.cli"),
    "edge": Engine("wyoming_verba.backends.edge", "EdgeBackend", "Microsoft Edge TTS",
                   "https://github.com/rany2/edge-tts"),
    "piper": Engine("wyoming_verba.backends.piper", "PiperBackend", "Piper",
                    "https://github.com/OHF-Voice/piper1-gpl", extra="piper"),
    "espeak": Engine("wyoming_verba.backends.espeak", "EspeakBackend", "eSpeak NG",
                     "https://github.com/espeak-ng/espeak-ng"),
    "remote": Engine("wyoming_verba.backends.remote", "RemoteBackend", "Wyoming remote",
                     "https://github.com/rhasspy/wyoming"),
}


def attribution(name: str) -> tuple[str, str]:
    """Who made a backend's voices, for `info` (injected test backends get a generic one)."""
    engine = ENGINES.get(name)
    return (engine.author, engine.url) if engine else (name, "")


def engine_class(name: str) -> type[Backend]:
    """A backend's class. Raises ImportError when its optional extra is missing."""
    engine = ENGINES[name]
    cls: type[Backend] = getattr(importlib.import_module(engine.module), engine.cls)
    return cls


def engine_command(name: str) -> Callable[[list[str]], int]:
    """An engine's own command line (`wyoming-verba csm-voices ...`)."""
    main: Callable[[list[str]], int] = importlib.import_module(ENGINES[name].cli).main
    return main


def create_backend(name: str, settings: Settings) -> Backend:
    """Instantiate one backend. Raises ImportError when its optional extra is missing."""
    return engine_class(name)(settings)  # type: ignore[call-arg]


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def auto_skip_reason(name: str, settings: Settings) -> str | None:
    """Why `auto` leaves a backend out on this machine, or None to try it."""
    if name == "csm" and settings.csm_device in ("auto", "cuda") and not _cuda_available():
        return "no CUDA GPU (choose it explicitly with --backend csm to run it on the CPU)"
    return None


def chain_names(settings: Settings) -> tuple[list[str], dict[str, str]]:
    """The backends the configured chain tries, in order, and why `auto` leaves the
    others out on this machine (without building any)."""
    names = list(settings.backends)
    if not settings.backend_explicit and settings.remote_uri and "remote" not in names:
        names.insert(1, "remote")  # auto with a GPU host: local GPU, remote GPU, then the rest
    kept: list[str] = []
    skipped: dict[str, str] = {}
    for name in names:
        reason = None if settings.backend_explicit else auto_skip_reason(name, settings)
        if reason:
            skipped[name] = reason
        else:
            kept.append(name)
    return kept, skipped


def build_backends(settings: Settings) -> tuple[list[Backend], dict[str, str]]:
    """The backends of the configured chain, and why the others are left out."""
    names, skipped = chain_names(settings)
    backends: list[Backend] = []
    for name in names:
        try:
            backends.append(create_backend(name, settings))
        except ImportError as exc:
            extra = ENGINES[name].extra
            hint = f" (pip install 'wyoming-verba[{extra}]')" if extra else ""
            skipped[name] = f"not installed: {exc}{hint}"
    for name, reason in skipped.items():
        _LOGGER.info("backend %s left out: %s", name, reason)
    return backends, skipped
