"""Every setting, declared once, and the one frozen Settings object they fill.

Each field of `Settings` carries its `Option`: group, help, flag, checks, the original
project's environment name and the add-on option that run.sh turns into the flag. The
argument parser, the environment mapping, validation, the README's tables and the add-on
checks (tests/test_addon.py) are all derived from these declarations.

Every flag `--foo-bar` can also be set as `VERBA_FOO_BAR`; the original project's
`TTS_BACKEND`, `TTS_VOICE` and `SESAME_SPEAKER_ID` keep working. Precedence:
flag > VERBA_* > legacy name > default. Settings built in code are validated too."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

from . import __version__

ENV_PREFIX = "VERBA_"
BACKEND_NAMES = ("auto", "csm", "edge", "piper", "espeak", "remote")
BACKEND_ALIASES = {"sesame": "csm", "espeak-ng": "espeak"}
AUTO_CHAIN = ("csm", "edge", "piper", "espeak")
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")

# What edge-tts accepts for rate/volume and pitch (its data_classes.TTSConfig); the
# add-on's schema must use the same patterns (tests/test_addon.py checks).
EDGE_PERCENT = r"^[+-][0-9]+%$"
EDGE_HERTZ = r"^[+-][0-9]+Hz$"


class SettingsError(ValueError):
    """A setting is malformed; the message names the flag and the fix."""


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "wyoming-verba"


# --- checks: each returns what is wrong with a value, or None --------------------------

Check = Callable[[Any], str | None]


def positive(value: float) -> str | None:
    return None if value > 0 else "must be positive"


def not_negative(value: float) -> str | None:
    return None if value >= 0 else "must not be negative"


def between(lo: float, hi: float, unit: str = "") -> Check:
    def check(value: float) -> str | None:
        return None if lo <= value <= hi else f"choose between {lo} and {hi}{unit}"

    return check


def matches(pattern: str, hint: str) -> Check:
    compiled = re.compile(pattern)

    def check(value: str) -> str | None:
        return None if compiled.match(value) else hint

    check.pattern = pattern  # type: ignore[attr-defined]  # for the add-on schema test
    return check


def one_of(*choices: str) -> Check:
    def check(value: str) -> str | None:
        return None if value in choices else "choose " + ", ".join(choices)

    return check


def parse_backends(value: str) -> tuple[tuple[str, ...], bool]:
    """`--backend` → (the chain, whether the user named it). Raises SettingsError."""
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


def _check_backend(value: str) -> str | None:
    try:
        parse_backends(value)
    except SettingsError as exc:
        return str(exc)
    return None


def named_pair(value: str, flag: str, example: str) -> tuple[str, str]:
    """`NAME=VALUE` → (NAME, VALUE); raises SettingsError naming the flag."""
    name, _, target = value.partition("=")
    if not name.strip() or not target.strip():
        raise SettingsError(f"{flag} {value!r}: use NAME=VOICE, e.g. {example}")
    return name.strip(), target.strip()


def voice_pair(value: str) -> tuple[str, str]:
    voice, _, stand_in = value.partition("=")
    if not voice.strip() or not stand_in.strip():
        raise SettingsError(f"--voice-map {value!r}: use VOICE=STAND_IN, e.g. "
                            "speaker-0=en-US-GuyNeural")
    return voice.strip(), stand_in.strip()


# --- the declaration ----------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """How one Settings field is set and checked. Defaults cover most fields: the flag
    is `--field-name`, the value is parsed by the field's type."""

    group: str
    help: str
    flag: str = ""  # default: --<field-name>
    metavar: str | None = None
    checks: tuple[Check, ...] = ()
    parse: Callable[[str], Any] | None = None  # default: from the field's type
    switch: bool = False  # a flag without a value that sets the field to `not default`
    repeat: bool = False  # repeatable; the environment gives a comma-separated list
    const: Any = None  # `--flag` alone sets this; `--flag VALUE` sets VALUE
    negation: str = ""  # a second flag that sets the field to None (--no-zeroconf)
    legacy_env: str = ""  # the original project's variable name
    addon: str = ""  # the add-on option (config.yaml) that run.sh maps to this flag
    shown_default: str = ""  # the default as the README shows it, when not the value


def option(default: Any, help: str, group: str, **kw: Any) -> Any:
    return field(default=default, metadata={"option": Option(group, help, **kw)})


def _server(default: Any, help: str, **kw: Any) -> Any:
    return option(default, help, "server", **kw)


def _voices(default: Any, help: str, **kw: Any) -> Any:
    return option(default, help, "backends and voices", **kw)


def _edge(default: Any, help: str, **kw: Any) -> Any:
    return option(default, help, "edge", **kw)


def _csm(default: Any, help: str, **kw: Any) -> Any:
    return option(default, help, "csm", **kw)


def _piper(default: Any, help: str, **kw: Any) -> Any:
    return option(default, help, "piper", **kw)


def _espeak(default: Any, help: str, **kw: Any) -> Any:
    return option(default, help, "espeak", **kw)


def _remote(default: Any, help: str, **kw: Any) -> Any:
    return option(default, help, "remote", **kw)


def _http(default: Any, help: str, **kw: Any) -> Any:
    return option(default, help, "http", **kw)


def _text(default: Any, help: str, **kw: Any) -> Any:
    return option(default, help, "text", **kw)


def _check_lexicon(path: Path) -> str | None:
    """A lexicon that does not load stops the start (exit 2) with its line."""
    from .text.lexicon import LexiconError, load_lexicon

    try:
        load_lexicon(path)
    except LexiconError as exc:
        return exc.brief
    return None


@dataclass(frozen=True)
class Settings:
    # --- server
    uri: str = _server(
        "tcp://0.0.0.0:10200", "tcp://HOST:PORT, unix://PATH or stdio://",
        checks=(matches(r"^(tcp://[^:/]*:\d+|unix://.+|stdio://)$",
                        "use tcp://HOST:PORT, unix://PATH or stdio://"),))
    zeroconf: str | None = _server(
        None, "advertise over zeroconf/mDNS for Home Assistant (default name: wyoming-verba)",
        const="wyoming-verba", metavar="NAME", negation="--no-zeroconf")
    debug: bool = _server(False, "log at DEBUG level", switch=True, addon="debug_logging")
    log_format: str = _server("%(asctime)s %(levelname)s %(name)s: %(message)s",
                              "Python logging format string")
    output_rate: int | None = _server(
        None, "sample rate of every audio-chunk (auto: the first backend's own, so its audio "
        "goes out unresampled; other backends are resampled to it with soxr). Also the HTTP "
        "API's, where auto is OpenAI's 24000",
        parse=lambda v: None if v.strip().lower() == "auto" else int(v), shown_default="auto",
        checks=(between(8000, 192000, " Hz"),))
    samples_per_chunk: int = _server(
        4096, "largest audio-chunk in samples (audio is sent as soon as a backend makes it; "
        "this only cuts bigger blocks)", checks=(positive,))
    max_text_chars: int = _server(10_000, "longest text accepted in one request",
                                  checks=(positive,))
    max_event_bytes: int = _server(
        256 * 1024, "largest Wyoming event (header + data + payload) accepted",
        checks=(positive,))
    max_connections: int = _server(
        64, "concurrent client connections; when all are taken, the longest-idle one without "
        "a reply in progress is closed to make room", checks=(positive,))
    write_timeout: float = _server(
        10.0, "a client that reads nothing for this many seconds is dropped and its reply "
        "cancelled (a frozen satellite must not hold anything)", checks=(positive,))
    idle_timeout: float = _server(
        120.0, "close a connection that sends and receives nothing for this many seconds "
        "(0 = never); half-sent events count as nothing", checks=(not_negative,))
    first_sentence_chars: int = _server(
        100, "cut a longer first sentence at a clause boundary so audio starts sooner",
        checks=(positive,))
    max_sentence_chars: int = _server(
        500, "cut longer sentences at a clause boundary or space (backends choke on run-on "
        "text)", checks=(between(40, 100_000),))
    loudness: float | None = _server(
        -18.0, "loudness of every reply in LUFS, whichever backend speaks (off: each "
        "backend's own level)", parse=lambda v: None if v.strip().lower() == "off" else float(v),
        checks=(between(-40.0, -5.0),))
    sentence_pause: float = _server(
        0.3, "seconds of silence between sentences (each sentence's own leading and trailing "
        "silence is trimmed, so every backend pauses alike)", checks=(between(0.0, 5.0),))
    lead_in_ms: int = _server(
        0, "milliseconds of silence before a reply, for satellites that clip the first "
        "syllable", checks=(between(0, 2000),))
    shutdown_timeout: float = _server(5.0, "seconds in-flight replies get to finish on SIGTERM",
                                      checks=(not_negative,))
    startup_wait: float = _server(
        5.0, "seconds start-up waits for slow backends (CSM loading) before serving with the "
        "others; they join when ready", checks=(not_negative,))
    metrics_port: int | None = _server(
        None, "serve Prometheus metrics on this port (off by default)",
        checks=(between(1, 65535),))
    cache_mb: float = _server(0.0, "audio cache for repeated phrases, in MiB (0 = off)",
                              checks=(not_negative,), addon="cache_mb")
    # --- text
    lexicon: Path | None = _text(
        None, "pronunciation lexicon, YAML or JSON: whole words and phrases replaced before "
        "normalisation, per language where given; reloaded when the file changes",
        metavar="FILE", checks=(_check_lexicon,), addon="lexicon")
    # --- backends and voices
    backend: str = _voices(
        "auto", "auto, or a comma-separated failover chain of: csm (alias sesame), edge, "
        "piper, espeak, remote. auto = " + ",".join(AUTO_CHAIN) + " (what is usable on this "
        "machine)", checks=(_check_backend,), legacy_env="TTS_BACKEND", addon="backend")
    voice: str | None = _voices(
        None, "default voice name (mapped to a same-language voice on other backends)",
        legacy_env="TTS_VOICE", addon="voice")
    speaker: str | None = _voices(None, "default speaker (CSM speaker id, Piper speaker)",
                                  legacy_env="SESAME_SPEAKER_ID", addon="speaker")
    voice_map: tuple[tuple[str, str], ...] = _voices(
        (), "when VOICE's backend fails, speak with STAND_IN on the backend that has it "
        "(repeatable; default: a voice of the same language)",
        metavar="VOICE=STAND_IN", repeat=True, parse=voice_pair)
    language: str = _voices("en-US", "language used to pick voices when none is named",
                            addon="language")
    data_dirs: tuple[Path, ...] = _voices(
        (), "voice/data directory, repeatable; downloads and caches go to the first",
        flag="--data-dir", metavar="DIR", repeat=True, parse=lambda v: Path(v).expanduser(),
        shown_default="~/.local/share/wyoming-verba")
    sentence_timeout: float = _voices(
        10.0, "seconds a backend may take to start a sentence before the next one speaks",
        checks=(positive,))
    first_audio_deadline: float = _voices(
        1.0, "seconds a reply's first sentence may wait for audio before the next backend "
        "starts it too (later sentences: until the client would run out of audio); 0 = off",
        checks=(between(0.0, 30.0),))
    cooldown: float = _voices(
        30.0, "seconds a failing backend is skipped before being probed again",
        checks=(not_negative,))
    max_gpu_queue: int = _voices(
        4, "sentences that may wait for the GPU before going to the next backend",
        checks=(not_negative,))
    # --- edge
    edge_voice: str = _edge("en-US-GuyNeural",
                            "Edge voice used when a request names none, e.g. de-DE-KatjaNeural",
                            addon="edge_voice")
    edge_rate: str = _edge("+0%", "speaking rate, e.g. +10%% or -5%%", addon="edge_rate",
                           checks=(matches(EDGE_PERCENT,
                                           "use a signed percentage such as +10% or -5%"),))
    edge_volume: str = _edge("+0%", "volume, e.g. +0%%", addon="edge_volume",
                             checks=(matches(EDGE_PERCENT,
                                             "use a signed percentage such as +10% or -5%"),))
    edge_pitch: str = _edge("+0Hz", "pitch, e.g. +0Hz or -20Hz", addon="edge_pitch",
                            checks=(matches(EDGE_HERTZ,
                                            "use signed hertz such as +0Hz or -20Hz"),))
    edge_first_audio_timeout: float = _edge(
        4.0, "seconds to wait for a sentence's first audio from Edge", checks=(positive,))
    edge_chunk_timeout: float = _edge(3.0, "longest gap between audio blocks from Edge",
                                      checks=(positive,))
    edge_sentence_timeout: float = _edge(
        8.0, "all attempts at one sentence give up after this many seconds", checks=(positive,))
    edge_voice_list_timeout: float = _edge(
        2.0, "seconds start-up waits for Edge's voice list (then a cached or built-in list "
        "serves, and the real one is fetched in the background)", checks=(positive,))
    # --- csm
    csm_model: str = _csm("sesame/csm-1b", "Hugging Face model id or local directory "
                          "(HF_TOKEN for gated models)")
    csm_device: str = _csm("auto", "auto, cuda, cuda:N or cpu",
                           checks=(matches(r"^(auto|cpu|cuda(:\d+)?|mps)$",
                                           "auto, cpu, cuda or cuda:N"),))
    csm_dtype: str = _csm("auto", "auto, bfloat16, float16 or float32",
                          checks=(one_of("auto", "bfloat16", "float16", "float32"),))
    csm_compile: str = _csm("auto", "compile the frame step into one graph (a CUDA graph on "
                            "CUDA): auto (on CUDA), on or off",
                            checks=(one_of("auto", "on", "off"),))
    csm_voices: Path | None = _csm(
        None, "voices file or directory (speaker id, reference clip, transcript)",
        addon="csm_voices")
    csm_house_voices: str = _csm(
        "auto", "make a reference clip once for each CSM voice without one and keep it in "
        "the data directory, so the voice stays the same across replies and restarts: auto "
        "(on CUDA; clips already made are used everywhere), on or off",
        checks=(one_of("auto", "on", "off"),))
    csm_temperature: float = _csm(0.9, "sampling temperature (0 = greedy)",
                                  checks=(not_negative,))
    csm_top_k: int = _csm(50, "sample from the k likeliest codes", checks=(positive,))
    csm_seed: int | None = _csm(None, "seed for reproducible output")
    csm_context_sentences: int = _csm(2, "previous sentences of a reply kept as context",
                                      checks=(not_negative,))
    csm_max_sentence_seconds: float = _csm(
        45.0, "longest audio one sentence may get (the model sometimes never ends)",
        checks=(positive,))
    csm_end_silence: float = _csm(
        2.0, "seconds of silence after speech that end a sentence", checks=(positive,))
    # --- piper
    piper_voice: str = _piper(
        "en_US-joe-medium", "Piper voice used when a request names none (downloaded if "
        "missing)", addon="piper_voice")
    piper_length_scale: float | None = _piper(None, "speed (>1 slower)", checks=(positive,),
                                              addon="piper_length_scale")
    piper_noise_scale: float | None = _piper(None, "voice variation (default: the voice's own)",
                                             checks=(not_negative,))
    piper_noise_w: float | None = _piper(
        None, "phoneme length variation (default: the voice's own)", checks=(not_negative,))
    piper_sentence_silence: float = _piper(0.0, "seconds of silence after each sentence",
                                           checks=(not_negative,))
    piper_cuda: bool = _piper(False, "onnxruntime CUDA provider", switch=True)
    piper_download: bool = _piper(True, "never download missing Piper voices", switch=True,
                                  flag="--no-piper-download", addon="piper_download")
    piper_download_url: str = _piper("https://huggingface.co/rhasspy/piper-voices/resolve/v1.0.0",
                                     "base URL of the Piper voice repository")
    piper_download_wait: float = _piper(
        3.0, "seconds a request waits for its voice's download before another backend "
        "speaks", checks=(not_negative,))
    piper_max_loaded_voices: int = _piper(
        4, "Piper voices kept loaded (60-120 MB each, about twice once requests overlap); "
        "the least recently used is dropped",
        checks=(positive,))
    # --- espeak
    espeak_voice: str = _espeak("en-us", "espeak-ng voice, e.g. en-us, de", addon="espeak_voice")
    # --- remote
    remote_uri: str | None = _remote(None, "another Wyoming TTS server, tcp://HOST:PORT",
                                     addon="remote_uri")
    remote_voice: str | None = _remote(
        None, "voice to ask the remote for when a request names none of its voices",
        addon="remote_voice")
    remote_timeout: float = _remote(5.0, "seconds to connect, to first audio and between chunks",
                                    checks=(positive,), addon="remote_timeout")
    remote_refresh: float = _remote(300.0, "seconds between voice-list refreshes of a "
                                    "reachable remote", checks=(positive,))
    # --- http
    http_port: int | None = _http(
        None, "serve the OpenAI-compatible speech API and the voice page on this port "
        "(off by default; 0 = any free port)", checks=(between(0, 65535),))
    http_host: str = _http("127.0.0.1", "address the HTTP API listens on (0.0.0.0 = every "
                           "interface; then set --http-api-key)")
    http_api_key: str | None = _http(
        None, "require this bearer token on the HTTP API (Home Assistant ingress is trusted)",
        addon="http_api_key")
    http_voices: tuple[tuple[str, str], ...] = _http(
        (), "speak the OpenAI voice NAME with VOICE (repeatable; unmapped OpenAI names such "
        "as alloy speak the default voice)", flag="--http-voice", metavar="NAME=VOICE",
        repeat=True, parse=lambda v: named_pair(v, "--http-voice", "alloy=en-US-AriaNeural"))
    http_max_requests: int = _http(
        16, "speech requests the HTTP API serves at once; more get 429 with Retry-After",
        checks=(positive,))
    http_read_timeout: float = _http(
        10.0, "seconds a client gets to send a request's headers and body (then 408); idle "
        "keep-alive connections close after it too", checks=(positive,))

    def __post_init__(self) -> None:
        for f, spec in declared():
            value = getattr(self, f.name)
            if value is None:
                continue
            for check in spec.checks:
                problem = check(value)
                if problem:
                    shown = str(value) if isinstance(value, Path) else value
                    raise SettingsError(f"{flag_of(f)} {shown!r}: {problem}")
        if "remote" in self.backends and self.backend_explicit and not self.remote_uri:
            raise SettingsError("the remote backend needs --remote-uri tcp://HOST:PORT "
                                "(add-on option remote_uri)")

    @property
    def backends(self) -> tuple[str, ...]:
        """The configured chain (auto: the candidates, of which the usable ones run)."""
        return parse_backends(self.backend)[0]

    @property
    def backend_explicit(self) -> bool:
        """The user named the chain: every backend in it runs, usable here or not."""
        return parse_backends(self.backend)[1]

    @property
    def data_dir(self) -> Path:
        """Where downloads and caches go: the first data directory."""
        return self.data_dirs[0] if self.data_dirs else default_data_dir()


# --- derived: flags, environment names, parsing -----------------------------------------


def declared() -> Iterator[tuple[Field, Option]]:
    for f in fields(Settings):
        yield f, f.metadata["option"]


def flag_of(f: Field) -> str:
    return f.metadata["option"].flag or "--" + f.name.replace("_", "-")


def env_names(f: Field) -> list[str]:
    """The environment variables that set a field, first one set wins: a negation's
    (VERBA_NO_ZEROCONF), VERBA_<FLAG>, VERBA_<FIELD> when that differs, the legacy name."""
    spec: Option = f.metadata["option"]
    names = [ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()
             for flag in (spec.negation, flag_of(f)) if flag]
    if ENV_PREFIX + f.name.upper() not in names:
        names.append(ENV_PREFIX + f.name.upper())
    if spec.legacy_env:
        names.append(spec.legacy_env)
    return names


_TYPES: dict[str, Callable[[str], Any]] = {
    "int": int, "int | None": int, "float": float, "float | None": float,
    "Path | None": lambda v: Path(v).expanduser(),
}


def _parser_of(f: Field) -> Callable[[str], Any]:
    spec: Option = f.metadata["option"]
    return spec.parse or _TYPES.get(str(f.type), str)


def _bool(value: str) -> bool | None:
    word = value.strip().lower()
    return True if word in TRUE_WORDS else False if word in FALSE_WORDS else None


_UNSET = object()


def _parse(f: Field, text: str, source: str) -> Any:
    """One value as the field's type; `source` names where it came from for the error."""
    try:
        return _parser_of(f)(text)
    except SettingsError:
        raise
    except ValueError:
        raise SettingsError(f"{source}: {text!r} is not a valid value") from None


def _from_env(f: Field, name: str, value: str) -> Any:
    """The field's value from environment variable `name`, or _UNSET when that variable
    leaves it to the next one (VERBA_NO_ZEROCONF=false). Raises SettingsError."""
    spec: Option = f.metadata["option"]
    bad = SettingsError(f"{name}={value!r} is not a valid value")
    if spec.switch or (spec.negation and name == env_names(f)[0]):
        given = _bool(value)
        if given is None:
            raise bad
        if spec.negation:
            return None if given else _UNSET
        if name == ENV_PREFIX + f.name.upper():  # the field itself: VERBA_PIPER_DOWNLOAD
            return given
        return (not f.default) if given else f.default  # the flag: VERBA_NO_PIPER_DOWNLOAD
    if spec.const is not None:  # a boolean or a value: VERBA_ZEROCONF=true / =kitchen
        switch = _bool(value)
        return spec.const if switch else None if switch is False else value
    if spec.repeat:
        return tuple(_parse(f, v.strip(), name) for v in value.split(",") if v.strip())
    return _parse(f, value, name)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wyoming-verba",
        description="Wyoming text-to-speech server: Sesame CSM-1b, Edge, Piper and espeak-ng "
        "with per-sentence failover. Every flag can also be set as VERBA_<FLAG> "
        "(e.g. VERBA_URI).",
    )
    p.add_argument("--version", action="version", version=__version__)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f, spec in declared():
        if spec.group not in groups:
            groups[spec.group] = p.add_argument_group(spec.group)
        g = groups[spec.group]
        kw: dict[str, Any] = {"dest": f.name, "help": spec.help, "default": argparse.SUPPRESS}
        if spec.switch:
            kw["action"] = "store_const"
            kw["const"] = not f.default
        elif spec.repeat:
            kw["action"] = "append"
        elif spec.const is not None:
            kw["nargs"], kw["const"] = "?", spec.const
        if spec.metavar and not spec.switch:
            kw["metavar"] = spec.metavar
        g.add_argument(flag_of(f), **kw)
        if spec.negation:
            g.add_argument(spec.negation, dest=f.name, action="store_const", const=None,
                           default=argparse.SUPPRESS, help=f"turn {flag_of(f)} off")
    return p


def _join_negative_values(argv: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    """`--edge-pitch -20Hz` → `--edge-pitch=-20Hz`: argparse would take -20Hz for a flag.
    Any value flag followed by `-<digit>…` gets its value joined, so a negative number
    reaches the checks ("must not be negative") instead of an argparse usage error."""
    takes_value = {s for a in parser._actions if a.nargs != 0 for s in a.option_strings}
    out: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        nxt = args[i + 1] if i + 1 < len(args) else ""
        if args[i] in takes_value and re.match(r"^-\d", nxt):
            out.append(f"{args[i]}={nxt}")
            i += 2
        else:
            out.append(args[i])
            i += 1
    return out


def load_settings(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    parser: argparse.ArgumentParser | None = None,
) -> Settings:
    """Parse flags (falling back to the environment) into validated Settings.
    `parser`: `build_parser()` with a subcommand's own arguments added (ignored here).
    Raises SettingsError with a message fit for the user."""
    env = os.environ if env is None else env
    parser = parser or build_parser()
    try:
        args = parser.parse_args(
            _join_negative_values(sys.argv[1:] if argv is None else argv, parser))
    except SystemExit as exc:  # argparse already printed the message
        if exc.code == 0:
            raise
        raise SettingsError("invalid command line (see above)") from None
    given = vars(args)
    values: dict[str, Any] = {}
    for f, _spec in declared():
        if f.name in given:  # flags beat the environment; repeated flags replace its list
            value, flag = given[f.name], flag_of(f)
            if isinstance(value, list):
                values[f.name] = tuple(_parse(f, v, flag) for v in value)
            elif isinstance(value, str):
                values[f.name] = _parse(f, value, flag)
            else:  # a switch's or a negation's constant
                values[f.name] = value
            continue
        for name in env_names(f):
            if env.get(name, "") != "":
                value = _from_env(f, name, env[name])
                if value is not _UNSET:
                    values[f.name] = value
                    break
    return Settings(**values)


# --- derived: the README's tables --------------------------------------------------------


def _shown(f: Field) -> str:
    spec: Option = f.metadata["option"]
    if spec.shown_default:
        return f"`{spec.shown_default}`"
    if f.default is None or f.default == ():
        return "–"
    if isinstance(f.default, bool):
        return "`on`" if f.default else "`off`"
    return f"`{f.default}`"


def options_markdown() -> str:
    """The README's configuration tables, one per group (tests/test_readme.py checks the
    README holds exactly these)."""
    out: list[str] = []
    group = None
    for f, spec in declared():
        if spec.group != group:
            group = spec.group
            out += ["", f"**{group}**", "", "| flag | environment | default | meaning |",
                    "|---|---|---|---|"]
        flag = flag_of(f)
        if not spec.switch:
            flag += " " + (spec.metavar or f.name.upper())
            if spec.const is not None:
                flag = f"{flag_of(f)} [{spec.metavar or f.name.upper()}]"
        names = env_names(f)
        negation_env = names.pop(0) if spec.negation else ""
        envs = ", ".join(f"`{n}`" for n in names)
        meaning = spec.help.replace("%%", "%")
        out.append(f"| `{flag}` | {envs} | {_shown(f)} | {meaning} |")
        if spec.negation:
            out.append(f"| `{spec.negation}` | `{negation_env}` | – | turn {flag_of(f)} off |")
    return "\n".join(out[1:]) + "\n"
