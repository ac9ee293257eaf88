"""One frozen Settings object. CLI flags, environment variables and add-on options
(which run.sh turns into flags) all land here and are validated once.

Every flag `--foo-bar` can also be set as `VERBA_FOO_BAR`; the original project's
`TTS_BACKEND`, `TTS_VOICE` and `SESAME_SPEAKER_ID` keep working. Precedence:
flag > VERBA_* > legacy name > default."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from . import __version__

ENV_PREFIX = "VERBA_"
LEGACY_ENV = {"backend": "TTS_BACKEND", "voice": "TTS_VOICE", "speaker": "SESAME_SPEAKER_ID"}
BACKEND_NAMES = ("auto", "csm", "edge", "piper", "espeak", "remote")
BACKEND_ALIASES = {"sesame": "csm", "espeak-ng": "espeak"}
AUTO_CHAIN = ("csm", "edge", "piper", "espeak")


class SettingsError(ValueError):
    """A setting is malformed; the message names the flag and the fix."""


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "wyoming-verba"


@dataclass(frozen=True)
class Settings:
    # server
    uri: str = "tcp://0.0.0.0:10200"
    zeroconf: str | None = None
    debug: bool = False
    log_format: str = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    output_rate: int = 24000
    samples_per_chunk: int = 1024
    max_text_chars: int = 10_000
    max_event_bytes: int = 256 * 1024
    max_connections: int = 64
    first_sentence_chars: int = 100
    shutdown_timeout: float = 5.0
    startup_wait: float = 5.0
    metrics_port: int | None = None
    cache_mb: float = 0.0
    # backends and voices
    backends: tuple[str, ...] = AUTO_CHAIN
    backend_explicit: bool = False
    voice: str | None = None
    speaker: str | None = None
    language: str = "en-US"
    data_dirs: tuple[Path, ...] = ()
    voice_map: tuple[tuple[str, str], ...] = ()
    sentence_timeout: float = 10.0
    cooldown: float = 30.0
    max_gpu_queue: int = 4
    # edge
    edge_voice: str = "en-US-GuyNeural"
    edge_rate: str = "+0%"
    edge_volume: str = "+0%"
    edge_pitch: str = "+0Hz"
    edge_first_audio_timeout: float = 4.0
    edge_chunk_timeout: float = 3.0
    edge_sentence_timeout: float = 8.0
    # csm
    csm_model: str = "sesame/csm-1b"
    csm_device: str = "auto"
    csm_dtype: str = "auto"
    csm_compile: str = "auto"
    csm_voices: Path | None = None
    csm_temperature: float = 0.9
    csm_top_k: int = 50
    csm_seed: int | None = None
    csm_context_sentences: int = 2
    # piper
    piper_voice: str = "en_US-joe-medium"
    piper_length_scale: float | None = None
    piper_noise_scale: float | None = None
    piper_noise_w: float | None = None
    piper_sentence_silence: float = 0.0
    piper_cuda: bool = False
    piper_download: bool = True
    piper_download_url: str = (
        "https://huggingface.co/rhasspy/piper-voices/resolve/v1.0.0"
    )
    # espeak
    espeak_voice: str = "en-us"
    # remote
    remote_uri: str | None = None
    remote_voice: str | None = None
    remote_timeout: float = 5.0

    @property
    def data_dir(self) -> Path:
        """Where downloads and caches go: the first data directory."""
        return self.data_dirs[0] if self.data_dirs else default_data_dir()


# --- argument parser ---------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    d = Settings()
    p = argparse.ArgumentParser(
        prog="wyoming-verba",
        description="Wyoming text-to-speech server: Sesame CSM-1b, Edge, Piper and espeak-ng "
        "with per-sentence failover. Every flag can also be set as VERBA_<FLAG> "
        "(e.g. VERBA_URI).",
    )
    p.add_argument("--version", action="version", version=__version__)

    g = p.add_argument_group("server")
    g.add_argument("--uri", default=d.uri, help="tcp://HOST:PORT, unix://PATH or stdio://")
    g.add_argument(
        "--zeroconf", nargs="?", const="wyoming-verba", default=None, metavar="NAME",
        help="advertise over zeroconf/mDNS for Home Assistant (default name: wyoming-verba)",
    )
    g.add_argument("--no-zeroconf", action="store_true", help="disable zeroconf discovery")
    g.add_argument("--debug", action="store_true", help="log at DEBUG level")
    g.add_argument("--log-format", default=d.log_format, help="Python logging format string")
    g.add_argument("--output-rate", type=int, default=d.output_rate,
                   help="sample rate of every audio-chunk (resampled with soxr)")
    g.add_argument("--samples-per-chunk", type=int, default=d.samples_per_chunk,
                   help="largest audio-chunk in samples")
    g.add_argument("--max-text-chars", type=int, default=d.max_text_chars,
                   help="longest text accepted in one request")
    g.add_argument("--max-event-bytes", type=int, default=d.max_event_bytes,
                   help="largest Wyoming event (header + data + payload) accepted")
    g.add_argument("--max-connections", type=int, default=d.max_connections,
                   help="concurrent client connections")
    g.add_argument("--first-sentence-chars", type=int, default=d.first_sentence_chars,
                   help="cut a longer first sentence at a clause boundary so audio starts sooner")
    g.add_argument("--shutdown-timeout", type=float, default=d.shutdown_timeout,
                   help="seconds in-flight replies get to finish on SIGTERM")
    g.add_argument("--startup-wait", type=float, default=d.startup_wait,
                   help="seconds start-up waits for slow backends (CSM loading) before serving "
                   "with the others; they join when ready")
    g.add_argument("--metrics-port", type=int, default=None,
                   help="serve Prometheus metrics on this port (off by default)")
    g.add_argument("--cache-mb", type=float, default=d.cache_mb,
                   help="audio cache for repeated phrases, in MiB (0 = off)")

    g = p.add_argument_group("backends and voices")
    g.add_argument(
        "--backend", default="auto",
        help="auto, or a comma-separated failover chain of: csm (alias sesame), edge, piper, "
        "espeak, remote. auto = " + ",".join(AUTO_CHAIN) + " (what is usable on this machine)",
    )
    g.add_argument("--voice", help="default voice name (mapped to a same-language voice on "
                   "other backends)")
    g.add_argument("--speaker", help="default speaker (CSM speaker id, Piper speaker)")
    g.add_argument("--voice-map", action="append", default=None, metavar="VOICE=STAND_IN",
                   help="when VOICE's backend fails, speak with STAND_IN on the backend that has "
                   "it (repeatable; default: a voice of the same language)")
    g.add_argument("--language", default=d.language,
                   help="language used to pick voices when none is named")
    g.add_argument("--data-dir", action="append", default=None, dest="data_dirs",
                   help=f"voice/data directory, repeatable (default: {default_data_dir()})")
    g.add_argument("--sentence-timeout", type=float, default=d.sentence_timeout,
                   help="seconds a backend may take to start a sentence before the next one speaks")
    g.add_argument("--cooldown", type=float, default=d.cooldown,
                   help="seconds a failing backend is skipped before being probed again")
    g.add_argument("--max-gpu-queue", type=int, default=d.max_gpu_queue,
                   help="sentences that may wait for the GPU before going to the next backend")

    g = p.add_argument_group("edge")
    g.add_argument("--edge-voice", default=d.edge_voice,
                   help="Edge voice used when a request names none, e.g. de-DE-KatjaNeural")
    g.add_argument("--edge-rate", default=d.edge_rate, help="speaking rate, e.g. +10%% or -5%%")
    g.add_argument("--edge-volume", default=d.edge_volume, help="volume, e.g. +0%%")
    g.add_argument("--edge-pitch", default=d.edge_pitch, help="pitch, e.g. +0Hz or -20Hz")
    g.add_argument("--edge-first-audio-timeout", type=float, default=d.edge_first_audio_timeout,
                   help="seconds to wait for a sentence's first audio from Edge")
    g.add_argument("--edge-chunk-timeout", type=float, default=d.edge_chunk_timeout,
                   help="longest gap between audio blocks from Edge")
    g.add_argument("--edge-sentence-timeout", type=float, default=d.edge_sentence_timeout,
                   help="all attempts at one sentence give up after this many seconds")

    g = p.add_argument_group("csm")
    g.add_argument("--csm-model", default=d.csm_model,
                   help="Hugging Face model id or local directory (HF_TOKEN for gated models)")
    g.add_argument("--csm-device", default=d.csm_device, help="auto, cuda, cuda:N or cpu")
    g.add_argument("--csm-dtype", default=d.csm_dtype, help="auto, bfloat16, float16 or float32")
    g.add_argument("--csm-compile", default=d.csm_compile, choices=("auto", "on", "off"),
                   help="torch.compile/static caches on CUDA")
    g.add_argument("--csm-voices", type=Path, default=None,
                   help="voices file or directory (speaker id, reference clip, transcript)")
    g.add_argument("--csm-temperature", type=float, default=d.csm_temperature,
                   help="sampling temperature (0 = greedy)")
    g.add_argument("--csm-top-k", type=int, default=d.csm_top_k,
                   help="sample from the k likeliest codes")
    g.add_argument("--csm-seed", type=int, default=None, help="seed for reproducible output")
    g.add_argument("--csm-context-sentences", type=int, default=d.csm_context_sentences,
                   help="previous sentences of a reply kept as context")

    g = p.add_argument_group("piper")
    g.add_argument("--piper-voice", default=d.piper_voice,
                   help="Piper voice used when a request names none (downloaded if missing)")
    g.add_argument("--piper-length-scale", type=float, default=None, help="speed (>1 slower)")
    g.add_argument("--piper-noise-scale", type=float, default=None,
                   help="voice variation (default: the voice's own)")
    g.add_argument("--piper-noise-w", type=float, default=None,
                   help="phoneme length variation (default: the voice's own)")
    g.add_argument("--piper-sentence-silence", type=float, default=d.piper_sentence_silence,
                   help="seconds of silence after each sentence")
    g.add_argument("--piper-cuda", action="store_true", help="onnxruntime CUDA provider")
    g.add_argument("--no-piper-download", dest="piper_download", action="store_false",
                   default=True, help="never download missing Piper voices")
    g.add_argument("--piper-download-url", default=d.piper_download_url,
                   help="base URL of the Piper voice repository")

    g = p.add_argument_group("espeak")
    g.add_argument("--espeak-voice", default=d.espeak_voice, help="espeak-ng voice, e.g. en-us, de")

    g = p.add_argument_group("remote")
    g.add_argument("--remote-uri", default=None, help="another Wyoming TTS server, tcp://HOST:PORT")
    g.add_argument("--remote-voice", default=None,
                   help="voice to ask the remote for when a request names none of its voices")
    g.add_argument("--remote-timeout", type=float, default=d.remote_timeout,
                   help="seconds to connect, to first audio and between chunks")
    return p


def _env_defaults(
    parser: argparse.ArgumentParser, env: Mapping[str, str]
) -> dict[str, list[str]]:
    """Let VERBA_<DEST> (and the legacy names) replace each flag's default. Lists for
    repeatable flags are returned instead: argparse would append the flags to them."""
    lists: dict[str, list[str]] = {}
    for action in parser._actions:  # argparse has no public iterator
        if not action.option_strings or action.dest in ("help", "version"):
            continue
        flag = action.option_strings[-1].lstrip("-").replace("-", "_").upper()
        names = [ENV_PREFIX + flag, ENV_PREFIX + action.dest.upper()]
        if action.dest in LEGACY_ENV:
            names.append(LEGACY_ENV[action.dest])
        found = next(((n, env[n]) for n in names if env.get(n, "") != ""), None)
        if found is None:
            continue
        name, value = found
        if action.nargs == "?":  # --zeroconf [NAME]: a boolean or a name
            switch = value.strip().lower()
            if switch in ("1", "true", "yes", "on"):
                action.default = action.const
            elif switch not in ("0", "false", "no", "off"):
                action.default = value
        elif action.nargs == 0:  # store_true / store_false flags
            truthy = value.strip().lower() in ("1", "true", "yes", "on")
            is_true_flag = action.const is True
            action.default = truthy if is_true_flag else not truthy
        elif isinstance(action, argparse._AppendAction):
            lists[action.dest] = [v.strip() for v in value.split(",") if v.strip()]
        else:
            try:
                action.default = action.type(value) if callable(action.type) else value
            except ValueError:
                raise SettingsError(f"{name}={value!r} is not a valid value") from None
    return lists


def parse_backends(value: str) -> tuple[tuple[str, ...], bool]:
    names = [n.strip().lower() for n in value.split(",") if n.strip()]
    if not names:
        raise SettingsError("--backend is empty; use auto or e.g. csm,edge,espeak")
    names = [BACKEND_ALIASES.get(n, n) for n in names]
    unknown = [n for n in names if n not in BACKEND_NAMES]
    if unknown:
        raise SettingsError(
            f"unknown backend {', '.join(unknown)!r}; choose from "
            f"{', '.join(BACKEND_NAMES)} (sesame = csm)"
        )
    if names == ["auto"]:
        return AUTO_CHAIN, False
    if "auto" in names:
        raise SettingsError("auto cannot be combined with other backends")
    if len(set(names)) != len(names):
        raise SettingsError(f"--backend names a backend twice: {value}")
    return tuple(names), True


_EDGE_RATE = re.compile(r"^[+-]\d+%$")
_EDGE_PITCH = re.compile(r"^[+-]\d+Hz$")


def _validate(s: Settings) -> None:
    if not re.match(r"^(tcp://[^:/]*:\d+|unix://.+|stdio://)$", s.uri):
        raise SettingsError(f"--uri {s.uri!r}: use tcp://HOST:PORT, unix://PATH or stdio://")
    for flag, value in (("--edge-rate", s.edge_rate), ("--edge-volume", s.edge_volume)):
        if not _EDGE_RATE.match(value):
            raise SettingsError(f"{flag} {value!r}: use a signed percentage such as +10% or -5%")
    if not _EDGE_PITCH.match(s.edge_pitch):
        raise SettingsError(
            f"--edge-pitch {s.edge_pitch!r}: use signed hertz such as +0Hz or -20Hz"
        )
    positive = {
        "--output-rate": s.output_rate, "--samples-per-chunk": s.samples_per_chunk,
        "--max-text-chars": s.max_text_chars, "--max-event-bytes": s.max_event_bytes,
        "--max-connections": s.max_connections, "--first-sentence-chars": s.first_sentence_chars,
        "--sentence-timeout": s.sentence_timeout, "--edge-first-audio-timeout":
        s.edge_first_audio_timeout, "--edge-chunk-timeout": s.edge_chunk_timeout,
        "--edge-sentence-timeout": s.edge_sentence_timeout, "--remote-timeout": s.remote_timeout,
    }
    for flag, value in positive.items():
        if value <= 0:
            raise SettingsError(f"{flag} must be positive, got {value}")
    if not 8000 <= s.output_rate <= 192000:
        raise SettingsError(f"--output-rate {s.output_rate}: choose between 8000 and 192000 Hz")
    for flag, value in (("--cooldown", s.cooldown), ("--max-gpu-queue", s.max_gpu_queue),
                        ("--cache-mb", s.cache_mb), ("--shutdown-timeout", s.shutdown_timeout),
                        ("--startup-wait", s.startup_wait)):
        if value < 0:
            raise SettingsError(f"{flag} must not be negative, got {value}")
    if s.csm_dtype not in ("auto", "bfloat16", "float16", "float32"):
        raise SettingsError(f"--csm-dtype {s.csm_dtype!r}: auto, bfloat16, float16 or float32")
    if not re.match(r"^(auto|cpu|cuda(:\d+)?|mps)$", s.csm_device):
        raise SettingsError(f"--csm-device {s.csm_device!r}: auto, cpu, cuda or cuda:N")
    if "remote" in s.backends and s.backend_explicit and not s.remote_uri:
        raise SettingsError("the remote backend needs --remote-uri tcp://HOST:PORT")
    if s.metrics_port is not None and not 0 < s.metrics_port < 65536:
        raise SettingsError(f"--metrics-port {s.metrics_port}: not a TCP port")


_SIGNED_FLAGS = ("--edge-rate", "--edge-volume", "--edge-pitch")


def _join_signed_values(argv: Sequence[str]) -> list[str]:
    """`--edge-pitch -20Hz` → `--edge-pitch=-20Hz`: argparse would take -20Hz for a flag."""
    out: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        if args[i] in _SIGNED_FLAGS and i + 1 < len(args) and args[i + 1].startswith("-"):
            out.append(f"{args[i]}={args[i + 1]}")
            i += 2
        else:
            out.append(args[i])
            i += 1
    return out


def load_settings(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Parse flags (falling back to the environment) into validated Settings.
    Raises SettingsError with a message fit for the user."""
    parser = build_parser()
    env_lists = _env_defaults(parser, os.environ if env is None else env)
    try:
        args = parser.parse_args(_join_signed_values(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse already printed the message
        if exc.code == 0:
            raise
        raise SettingsError("invalid command line (see above)") from None
    for dest, values in env_lists.items():
        if getattr(args, dest) is None:  # flags replace the environment's list
            setattr(args, dest, values)
    return settings_from_namespace(args)


def _voice_pair(value: str) -> tuple[str, str]:
    voice, _, stand_in = value.partition("=")
    if not voice.strip() or not stand_in.strip():
        raise SettingsError(f"--voice-map {value!r}: use VOICE=STAND_IN, e.g. "
                            "speaker-0=en-US-GuyNeural")
    return voice.strip(), stand_in.strip()


def settings_from_namespace(args: argparse.Namespace) -> Settings:
    values = dict(vars(args))
    backends, explicit = parse_backends(values.pop("backend"))
    if values.pop("no_zeroconf", False):
        values["zeroconf"] = None
    values["data_dirs"] = tuple(Path(p).expanduser() for p in (values.get("data_dirs") or ()))
    values["voice_map"] = tuple(_voice_pair(v) for v in (values.get("voice_map") or ()))
    known = {f.name for f in fields(Settings)}
    settings = Settings(
        backends=backends,
        backend_explicit=explicit,
        **{k: v for k, v in values.items() if k in known},
    )
    _validate(settings)
    return settings
