"""The Home Assistant add-on: its manifest files checked against the Supervisor's
rules, run.sh's exact command line for several option sets (run under a bashio
stand-in), the discovery and health-check scripts, and the Docker images' inputs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import stat
import struct
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from wyoming_verba import __version__
from wyoming_verba.backends.factory import build_backends
from wyoming_verba.settings import Settings, declared, flag_of, load_settings

ROOT = Path(__file__).resolve().parent.parent
STUB = ROOT / "tests" / "bashio_stub" / "bashio"
S6 = ROOT / "addon" / "rootfs" / "etc" / "s6-overlay" / "s6-rc.d"
DISCOVERY = S6 / "discovery" / "run"
HEALTHCHECK = ROOT / "addon" / "healthcheck.sh"
LIBRARY = STUB.parent / "lib.sh"  # sourced, not run
SHELL_SCRIPTS = [ROOT / "run.sh", HEALTHCHECK, DISCOVERY, S6 / "verba" / "finish", STUB, LIBRARY]


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


CONFIG = load("config.yaml")
OPTIONS: dict = CONFIG["options"]
SCHEMA: dict = CONFIG["schema"]

# --- the Supervisor's rules (supervisor/addons/validate.py and options.py) --------------

ARCHS = {"amd64", "aarch64", "armv7", "armhf", "i386"}
SLUG = re.compile(r"^[-_.A-Za-z0-9]+$")
MAP_TYPES = {"data", "config", "ssl", "addons", "backup", "share", "media",
             "homeassistant_config", "all_addon_configs", "addon_config"}
IMAGE = re.compile(r"^([a-zA-Z\-\.:\d{}]+/)*?([\-\w{}]+)/([\-\w{}]+)(:[\.\-\w{}]+)?$")
ELEMENT = re.compile(
    r"^(?:|bool|email|url|port|device(?:\((?P<filter>subsystem=[a-z]+)\))?"
    r"|str(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?"
    r"|password(?:\((?P<p_min>\d+)?,(?P<p_max>\d+)?\))?"
    r"|int(?:\((?P<i_min>\d+)?,(?P<i_max>\d+)?\))?"
    r"|float(?:\((?P<f_min>[\d\.]+)?,(?P<f_max>[\d\.]+)?\))?"
    r"|match\((?P<match>.*)\)|list\((?P<list>.+)\))\??$"
)
# Keys the Supervisor knows; it silently drops any other (so a typo would vanish).
CONFIG_KEYS = {
    "name", "version", "slug", "description", "arch", "machine", "url", "startup", "boot",
    "init", "advanced", "stage", "ports", "ports_description", "watchdog", "webui", "ingress",
    "ingress_port", "ingress_entry", "ingress_stream", "panel_icon", "panel_title",
    "panel_admin", "homeassistant", "host_network", "host_pid", "host_ipc", "host_uts",
    "host_dbus", "devices", "udev", "tmpfs", "map", "environment", "privileged", "apparmor",
    "full_access", "audio", "video", "gpio", "usb", "uart", "devicetree", "kernel_modules",
    "realtime", "hassio_api", "hassio_role", "homeassistant_api", "stdin", "legacy",
    "docker_api", "auth_api", "services", "discovery", "backup_exclude", "backup_pre",
    "backup_post", "restore_pre", "restore_post", "backup", "options", "schema", "image",
    "ulimits", "timeout", "journald", "breaking_versions",
}


def validate_option(typ: str, value: object) -> None:
    """Raise AssertionError unless `value` passes the Supervisor's check for `typ`."""
    m = ELEMENT.match(typ)
    assert m, f"unknown option type {typ!r}"
    assert value is not None, "the Supervisor rejects null option values"
    base = typ.rstrip("?")

    def in_range(v: float, lo: str | None, hi: str | None) -> None:
        assert lo is None or v >= float(lo), f"{v} < {lo}"
        assert hi is None or v <= float(hi), f"{v} > {hi}"

    if base.startswith("bool"):
        assert isinstance(value, bool)
    elif base.startswith("int"):
        assert isinstance(value, int) and not isinstance(value, bool)
        in_range(value, m["i_min"], m["i_max"])
    elif base.startswith("float"):
        assert isinstance(value, int | float) and not isinstance(value, bool)
        in_range(float(value), m["f_min"], m["f_max"])
    elif base.startswith(("str", "password")):
        in_range(len(str(value)), m["s_min"] or m["p_min"], m["s_max"] or m["p_max"])
    elif base.startswith("url"):
        assert urlsplit(str(value)).scheme and urlsplit(str(value)).netloc
    elif base.startswith("port"):
        assert isinstance(value, int) and 1 <= value <= 65535
    elif base.startswith("match"):
        assert re.match(m["match"], str(value)), f"{value!r} does not match {m['match']}"
    elif base.startswith("list"):
        assert str(value) in m["list"].split("|")
    else:
        raise AssertionError(f"unsupported type {typ}")


def test_validator_rejects_what_the_supervisor_rejects() -> None:
    for typ, value in [("bool", "yes"), ("int(1,5)", 7), ("float(0,1)", 1.5), ("str", None),
                       ("match(^[+-][0-9]+%$)", "10%"), ("list(a|b)", "c"), ("port", 0)]:
        with pytest.raises(AssertionError):
            validate_option(typ, value)
    with pytest.raises(AssertionError):
        validate_option("string", "x")  # not a type the Supervisor knows


def test_config_yaml_follows_the_supervisor_schema() -> None:
    assert set(CONFIG) <= CONFIG_KEYS, f"unknown keys: {set(CONFIG) - CONFIG_KEYS}"
    for key in ("name", "version", "slug", "description"):
        assert isinstance(CONFIG[key], str) and CONFIG[key]
    assert SLUG.match(CONFIG["slug"])
    assert CONFIG["version"] == __version__
    assert CONFIG["arch"] == ["amd64", "aarch64"] and set(CONFIG["arch"]) <= ARCHS
    assert urlsplit(CONFIG["url"]).scheme == "https"
    assert CONFIG["init"] is False  # the base image's s6-overlay is PID 1
    assert CONFIG["discovery"] == ["wyoming"]
    assert CONFIG["ports"] == {"10200/tcp": 10200}
    assert set(CONFIG["ports_description"]) == set(CONFIG["ports"])
    assert "image" not in CONFIG  # built locally from the Dockerfile
    for entry in CONFIG["map"]:
        assert entry["type"] in MAP_TYPES and isinstance(entry.get("read_only", True), bool)


def test_every_option_has_a_valid_schema_entry_and_default() -> None:
    assert set(OPTIONS) <= set(SCHEMA), f"options without schema: {set(OPTIONS) - set(SCHEMA)}"
    for key, typ in SCHEMA.items():
        assert isinstance(typ, str) and ELEMENT.match(typ), f"{key}: bad type {typ!r}"
        if not typ.endswith("?"):
            assert key in OPTIONS, f"required option {key} needs a default"
    for key, value in OPTIONS.items():
        validate_option(SCHEMA[key], value)


def test_schema_types_accept_good_and_reject_bad_values() -> None:
    good = {"backend": ["auto", "remote,edge,espeak", "sesame, piper"],
            "edge_rate": ["+10%", "-5%"], "edge_pitch": ["-20Hz"], "language": ["de-DE", "en"],
            "remote_uri": ["tcp://192.168.1.20:10200", "tcp://gpu-box.lan:10200",
                           "tcp://[fd00::2]:10200"]}
    bad = {"backend": ["auto,edge", "google", ""], "edge_rate": ["10%", "+10"],
           "edge_pitch": ["+10%"], "language": ["english!"],
           "remote_uri": ["192.168.1.20:10200", "http://gpu:10200", "tcp://gpu"]}
    for key, values in good.items():
        for value in values:
            validate_option(SCHEMA[key], value)
    for key, values in bad.items():
        for value in values:
            with pytest.raises(AssertionError):
                validate_option(SCHEMA[key], value)


def test_defaults_are_the_servers_defaults() -> None:
    d = Settings()
    assert (OPTIONS["language"], OPTIONS["edge_voice"], OPTIONS["edge_rate"],
            OPTIONS["edge_pitch"], OPTIONS["edge_volume"], OPTIONS["piper_voice"]) == (
        d.language, d.edge_voice, d.edge_rate, d.edge_pitch, d.edge_volume, d.piper_voice)
    assert OPTIONS["remote_timeout"] == d.remote_timeout
    assert OPTIONS["cache_mb"] == d.cache_mb
    assert OPTIONS["piper_download"] is d.piper_download
    assert OPTIONS["backend"] == "auto"  # no GPU on Home Assistant OS


ADDON_SETTINGS = {spec.addon: (f, spec) for f, spec in declared() if spec.addon}


def test_every_option_is_a_declared_setting_with_its_default_and_pattern() -> None:
    """config.yaml is checked against the settings' own declarations (settings.py)."""
    assert set(ADDON_SETTINGS) == set(SCHEMA)
    for key, (f, spec) in ADDON_SETTINGS.items():
        if key in OPTIONS and key not in ("csm_voices", "lexicon"):  # they live in /share
            assert OPTIONS[key] == f.default, key
        patterns = [c.pattern for c in spec.checks if hasattr(c, "pattern")]
        if patterns:  # the Supervisor checks what the server checks, with the same pattern
            assert SCHEMA[key].rstrip("?") == f"match({patterns[0]})", key


def test_translations_name_and_describe_every_option() -> None:
    translations = load("translations/en.yaml")
    assert set(translations) <= {"configuration", "network"}
    configuration = translations["configuration"]
    assert set(configuration) == set(SCHEMA)
    for key, entry in configuration.items():
        assert isinstance(entry["name"], str) and entry["name"], key
        assert isinstance(entry["description"], str) and len(entry["description"]) > 10, key
    assert set(translations["network"]) == set(CONFIG["ports"])


def test_build_and_repository_yaml() -> None:
    build = load("build.yaml")
    assert set(build) <= {"build_from", "squash", "args", "labels"}
    assert set(build["build_from"]) == set(CONFIG["arch"])
    for image in build["build_from"].values():
        assert IMAGE.match(image), image
    repository = load("repository.yaml")
    assert isinstance(repository["name"], str) and repository["name"]
    assert urlsplit(repository["url"]).scheme == "https"


def test_the_store_finds_exactly_one_addon() -> None:
    """The Supervisor takes every config.{json,yaml,yml} outside hidden folders and
    rootfs/ for an add-on: another one anywhere (a model's config.json...) breaks it."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout: the store reads the repository's files")
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.splitlines()
    found = [p for p in tracked
             if re.search(r"(^|/)config\.(json|ya?ml)$", p)
             and not any(part.startswith(".") or part == "rootfs" for part in p.split("/"))]
    assert found == ["config.yaml"]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_icon_and_logo() -> None:
    assert png_size(ROOT / "icon.png") == (128, 128)
    width, height = png_size(ROOT / "logo.png")
    assert width > height  # a landscape logo, as the store shows it


def test_docs_and_changelog_mention_this_version_and_every_option() -> None:
    assert f"## {__version__}" in (ROOT / "CHANGELOG.md").read_text()
    docs = (ROOT / "DOCS.md").read_text()
    for key in SCHEMA:
        assert f"`{key}`" in docs, f"DOCS.md does not explain {key}"


# --- run.sh under the bashio stand-in ----------------------------------------------------


def fake_bin(tmp_path: Path, name: str, body: str) -> None:
    path = tmp_path / "bin" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def run_with_bashio(script: Path, tmp_path: Path, options: dict) -> subprocess.CompletedProcess:
    (tmp_path / "options.json").write_text(json.dumps(options))
    env = {
        "PATH": f"{tmp_path / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "BASHIO_STUB_OPTIONS": str(tmp_path / "options.json"),
        "BASHIO_STUB_PYTHON": sys.executable,
        "BASHIO_STUB_DISCOVERY": str(tmp_path / "discovery.txt"),
        "ARGV_OUT": str(tmp_path / "argv"),
    }
    return subprocess.run(["bash", str(STUB), str(script)], env=env, capture_output=True,
                          text=True, timeout=30)


def run_sh(tmp_path: Path, **changes: object) -> list[str]:
    """The argv run.sh execs `python3` with, for the default options plus `changes`
    (None removes an option, as the Supervisor does for an empty optional one)."""
    options = {**OPTIONS, **changes}
    options = {k: v for k, v in options.items() if v is not None}
    fake_bin(tmp_path, "python3", 'printf "%s\\0" "$@" > "$ARGV_OUT"\n')
    result = run_with_bashio(ROOT / "run.sh", tmp_path, options)
    assert result.returncode == 0, result.stderr
    return (tmp_path / "argv").read_text().split("\0")[:-1]


BASE = ["-m", "wyoming_verba", "--uri", "tcp://0.0.0.0:10200", "--data-dir", "/data",
        "--http-port", "8099", "--http-host", "0.0.0.0"]


def test_run_sh_defaults(tmp_path: Path) -> None:
    assert run_sh(tmp_path) == BASE + [
        "--backend=auto", "--language=en-US", "--edge-voice=en-US-GuyNeural",
        "--edge-rate=+0%", "--edge-pitch=+0Hz", "--edge-volume=+0%",
        "--piper-voice=en_US-joe-medium", "--remote-timeout=5.0", "--cache-mb=0.0",
    ]


def test_run_sh_every_option(tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    voices.mkdir()
    lexicon = tmp_path / "lexicon.yaml"
    lexicon.write_text("words:\n  Hue: hyoo\n")
    everything = {
        "backend": "auto", "voice": "en-US-AriaNeural", "speaker": "1", "language": "en-GB",
        "edge_voice": "en-GB-SoniaNeural", "edge_rate": "+10%", "edge_pitch": "-20Hz",
        "edge_volume": "-5%", "piper_voice": "en_GB-alan-low", "piper_length_scale": 1.2,
        "piper_download": False, "espeak_voice": "en-gb", "remote_uri": "tcp://gpu-box:10200",
        "remote_voice": "conversational_a", "remote_timeout": 2.5, "csm_voices": str(voices),
        "lexicon": str(lexicon), "cache_mb": 32.0, "http_api_key": "s3cret",
        "debug_logging": True,
    }
    assert set(everything) == set(SCHEMA), "extend this test when adding an option"
    argv = run_sh(tmp_path, **everything)
    for key, (f, _spec) in ADDON_SETTINGS.items():  # each option reaches its declared flag
        flag = flag_of(f)
        assert any(a == flag or a.startswith(flag + "=") for a in argv), key
    assert argv == BASE + [
        "--remote-uri=tcp://gpu-box:10200",
        "--backend=auto",
        "--voice=en-US-AriaNeural", "--speaker=1", "--language=en-GB",
        "--edge-voice=en-GB-SoniaNeural", "--edge-rate=+10%", "--edge-pitch=-20Hz",
        "--edge-volume=-5%", "--piper-voice=en_GB-alan-low",
        "--piper-length-scale=1.2", "--no-piper-download", "--espeak-voice=en-gb",
        "--remote-voice=conversational_a", "--remote-timeout=2.5",
        f"--csm-voices={voices}", f"--lexicon={lexicon}", "--cache-mb=32.0",
        "--http-api-key=s3cret", "--debug",
    ]
    # Every flag exists and every value is accepted by the server's own parser.
    s = load_settings(argv[2:], env={})
    assert not s.backend_explicit
    backends, skipped = build_backends(s)
    assert [b.name for b in backends][0] == "remote"  # auto + a remote: the GPU host first
    assert "csm" not in [b.name for b in backends]  # no CUDA here, as on Home Assistant OS
    assert (s.voice, s.speaker, s.language) == ("en-US-AriaNeural", "1", "en-GB")
    assert (s.edge_voice, s.edge_rate, s.edge_pitch, s.edge_volume) == (
        "en-GB-SoniaNeural", "+10%", "-20Hz", "-5%")
    assert (s.piper_voice, s.piper_length_scale, s.piper_download) == ("en_GB-alan-low", 1.2,
                                                                       False)
    assert (s.remote_uri, s.remote_voice, s.remote_timeout) == (
        "tcp://gpu-box:10200", "conversational_a", 2.5)
    assert (s.espeak_voice, s.csm_voices, s.cache_mb, s.debug) == ("en-gb", voices, 32.0, True)
    assert s.lexicon == lexicon
    assert s.data_dirs == (Path("/data"),) and s.uri == "tcp://0.0.0.0:10200"
    assert (s.http_port, s.http_host, s.http_api_key) == (8099, "0.0.0.0", "s3cret")


def test_ingress_opens_the_page_on_the_http_port(tmp_path: Path) -> None:
    """The sidebar panel is the page: the Supervisor proxies ingress_port, which is the
    port run.sh gives --http-port, listening beyond the container's loopback."""
    assert CONFIG["ingress"] is True
    assert "ingress_entry" not in CONFIG  # the page is at /
    assert re.match(r"^mdi:[a-z0-9-]+$", CONFIG["panel_icon"])
    assert isinstance(CONFIG["panel_title"], str) and CONFIG["panel_title"]
    argv = run_sh(tmp_path)
    s = load_settings(argv[2:], env={})
    assert s.http_port == CONFIG["ingress_port"] and s.http_host == "0.0.0.0"
    assert CONFIG["ingress_port"] not in [int(p.split("/")[0]) for p in CONFIG["ports"]]


def test_run_sh_defaults_parse(tmp_path: Path) -> None:
    s = load_settings(run_sh(tmp_path)[2:], env={})
    assert s.backends == Settings().backends and not s.backend_explicit


def test_run_sh_keeps_an_explicit_chain(tmp_path: Path) -> None:
    argv = run_sh(tmp_path, backend="edge, remote", remote_uri="tcp://10.0.0.5:10200")
    assert argv[len(BASE):len(BASE) + 2] == ["--remote-uri=tcp://10.0.0.5:10200",
                                             "--backend=edge,remote"]


def test_run_sh_remote_without_uri_explains_itself(tmp_path: Path) -> None:
    """The rule lives in the server's settings; run.sh passes the options on and the
    real server refuses them with a message that names the add-on option."""
    fake_bin(tmp_path, "python3", f'exec "{sys.executable}" "$@"\n')
    result = run_with_bashio(ROOT / "run.sh", tmp_path, {**OPTIONS, "backend": "remote,espeak"})
    assert result.returncode == 2
    assert "remote_uri" in result.stderr and "--remote-uri" in result.stderr


def test_run_sh_skips_a_missing_csm_voices_folder(tmp_path: Path) -> None:
    argv = run_sh(tmp_path, csm_voices=str(tmp_path / "nowhere"))
    assert not [a for a in argv if a.startswith("--csm-voices")]


def test_run_sh_passes_a_lexicon_that_exists(tmp_path: Path) -> None:
    assert not [a for a in run_sh(tmp_path) if a.startswith("--lexicon")]  # not in /share
    lexicon = tmp_path / "lexicon.yaml"
    lexicon.write_text("words:\n  Hue: hyoo\n")
    assert f"--lexicon={lexicon}" in run_sh(tmp_path, lexicon=str(lexicon))


def test_run_sh_bad_lexicon_stops_the_addon_naming_the_line(tmp_path: Path) -> None:
    lexicon = tmp_path / "lexicon.yaml"
    lexicon.write_text("words:\n  Hue: hyoo\n  Siobhan:\n")
    fake_bin(tmp_path, "python3", f'exec "{sys.executable}" "$@"\n')
    result = run_with_bashio(ROOT / "run.sh", tmp_path, {**OPTIONS, "lexicon": str(lexicon)})
    assert result.returncode == 2
    assert f"--lexicon '{lexicon}': line 3: 'Siobhan' has no replacement" in result.stderr


# --- discovery and health check ----------------------------------------------------------


def test_discovery_waits_for_describe_then_posts_the_uri(tmp_path: Path) -> None:
    # The health check fails once (server still loading), then answers.
    fake_bin(tmp_path, "verba-healthcheck",
             'echo "$@" >> "$ARGV_OUT"\n[ "$(wc -l < "$ARGV_OUT")" -ge 2 ]\n')
    fake_bin(tmp_path, "hostname", "echo 5f1c2d3e-wyoming-verba\n")
    result = run_with_bashio(DISCOVERY, tmp_path, OPTIONS)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "argv").read_text().splitlines() == ["127.0.0.1 10200 5"] * 2
    service, config = (tmp_path / "discovery.txt").read_text().strip().split(" ", 1)
    assert service == "wyoming"
    assert json.loads(config) == {"uri": "tcp://5f1c2d3e-wyoming-verba:10200"}


def healthcheck(port: int, seconds: int = 5) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(HEALTHCHECK), "127.0.0.1", str(port), str(seconds)],
                          capture_output=True, text=True, timeout=30)


async def test_healthcheck_passes_on_a_real_server(verba_server) -> None:
    server = await verba_server("--backend", "espeak")
    port = int(server.uri.rsplit(":", 1)[1])
    result = await asyncio.to_thread(healthcheck, port)
    assert result.returncode == 0, result.stderr


def test_healthcheck_fails_on_a_closed_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert healthcheck(port).returncode != 0


def test_healthcheck_fails_on_a_silent_server() -> None:
    """A port that accepts but never answers (a stuck event loop) is unhealthy."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert healthcheck(s.getsockname()[1], seconds=1).returncode != 0


# --- scripts and images --------------------------------------------------------------


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts(script: Path) -> None:
    assert script == LIBRARY or script.stat().st_mode & stat.S_IXUSR, f"{script} not executable"
    subprocess.run(["bash", "-n", str(script)], check=True)
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    result = subprocess.run(["shellcheck", "-x", str(script)], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout


def test_s6_services() -> None:
    assert (ROOT / "run.sh").read_text().startswith("#!/command/with-contenv bashio\n")
    services = {p.name for p in S6.iterdir() if p.is_dir() and p.name != "user"}
    assert services == {"verba", "discovery"}
    assert sorted(p.name for p in (S6 / "user" / "contents.d").iterdir()) == sorted(services)
    assert (S6 / "verba" / "type").read_text().strip() == "longrun"
    assert (S6 / "discovery" / "type").read_text().strip() == "oneshot"
    assert (S6 / "discovery" / "up").read_text().strip() == "/etc/s6-overlay/s6-rc.d/discovery/run"
    assert [p.name for p in (S6 / "discovery" / "dependencies.d").iterdir()] == ["verba"]


def dockerfile_copies(name: str) -> list[str]:
    text = (ROOT / name).read_text().replace("\\\n", " ")
    sources: list[str] = []
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "COPY":
            sources += [p for p in parts[1:-1] if not p.startswith("--")]
    return sources


def dockerignored(path: str) -> bool:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch(prefix, pattern.removeprefix("**/")) or fnmatch(prefix, pattern)
               for pattern in patterns for prefix in prefixes)


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.cuda"])
def test_dockerfile_inputs_exist_and_reach_the_build(dockerfile: str) -> None:
    sources = dockerfile_copies(dockerfile)
    assert "pyproject.toml" in sources and "wyoming_verba" in sources
    readme = re.search(r'^readme\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert readme and readme.group(1) in sources  # setuptools needs it to build
    for source in sources:
        assert (ROOT / source).exists(), f"{dockerfile} copies missing {source}"
        assert not dockerignored(source), f".dockerignore hides {source} from {dockerfile}"
    assert dockerignored("tests/test_addon.py") and dockerignored(".venv/bin/python")


def test_dockerfiles_install_like_ci_and_check_health_with_describe() -> None:
    addon = (ROOT / "Dockerfile").read_text()
    cuda = (ROOT / "Dockerfile.cuda").read_text()
    assert re.search(r"^ARG BUILD_FROM", addon, re.M) and "FROM ${BUILD_FROM}" in addon
    assert 'pip install ".[piper]"' in addon
    assert 'pip install ".[csm,piper]"' in cuda
    assert "COPY run.sh /etc/s6-overlay/s6-rc.d/verba/run" in addon
    assert 'ENTRYPOINT ["python3", "-m", "wyoming_verba"]' in cuda
    for text in (addon, cuda):
        assert "COPY addon/healthcheck.sh /usr/local/bin/verba-healthcheck" in text
        assert re.search(r"HEALTHCHECK .*\n?.*CMD verba-healthcheck 127\.0\.0\.1 10200", text)
        assert "HF_HOME=/data/huggingface" in text  # the model cache lives on /data
    ci = ROOT / ".ci" / "run"
    if ci.exists():  # the CUDA image pins the torch that CI tests with
        pins = set(re.findall(r"torch==[\w.+]+", ci.read_text()))
        assert pins and pins == set(re.findall(r"torch==[\w.+]+", cuda))
