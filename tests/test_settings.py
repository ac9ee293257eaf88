"""Flags, environment variables and their precedence land in one Settings object."""

import pytest

from wyoming_verba.__main__ import main
from wyoming_verba.settings import (
    AUTO_CHAIN,
    Settings,
    SettingsError,
    declared,
    env_names,
    flag_of,
    load_settings,
    options_markdown,
)


def test_defaults():
    s = load_settings([], env={})
    assert s.uri == "tcp://0.0.0.0:10200"
    assert s.backends == AUTO_CHAIN and not s.backend_explicit
    assert s.zeroconf is None and s.output_rate is None  # auto: the first backend's own


def test_legacy_env_names_keep_working():
    s = load_settings([], env={"TTS_BACKEND": "sesame,edge", "TTS_VOICE": "en-GB-SoniaNeural",
                               "SESAME_SPEAKER_ID": "4"})
    assert s.backends == ("csm", "edge") and s.backend_explicit
    assert s.voice == "en-GB-SoniaNeural" and s.speaker == "4"


def test_flags_beat_verba_env_which_beats_legacy_env():
    env = {"TTS_BACKEND": "edge", "VERBA_BACKEND": "piper", "VERBA_OUTPUT_RATE": "16000",
           "VERBA_DEBUG": "true", "VERBA_DATA_DIR": "/a,/b", "VERBA_NO_PIPER_DOWNLOAD": "1"}
    s = load_settings([], env=env)
    assert s.backends == ("piper",) and s.output_rate == 16000 and s.debug
    assert [str(p) for p in s.data_dirs] == ["/a", "/b"] and s.piper_download is False
    s = load_settings(["--backend", "espeak", "--output-rate", "22050"], env=env)
    assert s.backends == ("espeak",) and s.output_rate == 22050
    assert load_settings(["--output-rate", "auto"], env=env).output_rate is None
    assert load_settings([], env={"VERBA_OUTPUT_RATE": "AUTO"}).output_rate is None


def test_zeroconf_flags():
    assert load_settings(["--zeroconf"], env={}).zeroconf == "wyoming-verba"
    assert load_settings(["--zeroconf", "kitchen"], env={}).zeroconf == "kitchen"
    assert load_settings(["--no-zeroconf"], env={"VERBA_ZEROCONF": "x"}).zeroconf is None


def test_negative_edge_values_need_no_equals_sign():
    s = load_settings(["--edge-pitch", "-20Hz", "--edge-rate", "-5%", "--edge-volume=+10%"],
                      env={})
    assert (s.edge_pitch, s.edge_rate, s.edge_volume) == ("-20Hz", "-5%", "+10%")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backend", "festival"], "unknown backend"),
        (["--backend", "auto,edge"], "cannot be combined"),
        (["--backend", "edge,edge"], "twice"),
        (["--edge-rate", "10%"], "signed percentage"),
        (["--edge-pitch", "+3st"], "signed hertz"),
        (["--uri", "http://x:1"], "tcp://HOST:PORT"),
        (["--output-rate", "1000"], "8000 and 192000"),
        (["--max-text-chars", "0"], "positive"),
        (["--backend", "remote"], "--remote-uri"),
        (["--csm-dtype", "int8"], "--csm-dtype"),
    ],
)
def test_malformed_settings_have_clear_messages(argv, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(argv, env={})


def test_cli_prints_the_message_and_exits_2(capsys):
    assert main(["--edge-rate", "fast"]) == 2
    assert "--edge-rate 'fast'" in capsys.readouterr().err


def test_say_writes_a_wav(tmp_path, capsys):
    import wave

    out = tmp_path / "hello.wav"
    assert main(["say", "Hello there. How are you?", "-o", str(out), "--backend", "espeak",
                 "--data-dir", str(tmp_path)]) == 0
    with wave.open(str(out)) as wav:
        assert wav.getframerate() == 22050 and wav.getsampwidth() == 2  # espeak-ng's own
        assert 1.0 < wav.getnframes() / 22050 < 5.0
    assert "wrote" in capsys.readouterr().out
    assert main(["say", "Hello", "-o", str(out), "--backend", "espeak", "--voice", "nobody",
                 "--data-dir", str(tmp_path)]) == 1


def test_repeatable_flags_replace_the_environment_list():
    s = load_settings(["--data-dir", "/x"], env={"VERBA_DATA_DIR": "/a,/b"})
    assert [str(p) for p in s.data_dirs] == ["/x"]


def test_malformed_environment_value_names_the_variable():
    with pytest.raises(SettingsError, match="VERBA_OUTPUT_RATE"):
        load_settings([], env={"VERBA_OUTPUT_RATE": "fast"})


def test_zeroconf_from_the_environment():
    assert load_settings([], env={"VERBA_ZEROCONF": "true"}).zeroconf == "wyoming-verba"
    assert load_settings([], env={"VERBA_ZEROCONF": "false"}).zeroconf is None
    assert load_settings([], env={"VERBA_ZEROCONF": "kitchen"}).zeroconf == "kitchen"


def test_switches_from_the_environment_by_flag_or_by_field():
    assert load_settings([], env={"VERBA_NO_PIPER_DOWNLOAD": "1"}).piper_download is False
    assert load_settings([], env={"VERBA_NO_PIPER_DOWNLOAD": "0"}).piper_download is True
    assert load_settings([], env={"VERBA_PIPER_DOWNLOAD": "false"}).piper_download is False
    assert load_settings([], env={"VERBA_PIPER_DOWNLOAD": "yes"}).piper_download is True
    assert load_settings([], env={"VERBA_DEBUG": "on"}).debug is True
    with pytest.raises(SettingsError, match="VERBA_DEBUG"):
        load_settings([], env={"VERBA_DEBUG": "maybe"})


def test_no_zeroconf_in_the_environment_wins_only_when_true():
    env = {"VERBA_ZEROCONF": "kitchen", "VERBA_NO_ZEROCONF": "1"}
    assert load_settings([], env=env).zeroconf is None
    env["VERBA_NO_ZEROCONF"] = "0"
    assert load_settings([], env=env).zeroconf == "kitchen"
    assert load_settings(["--zeroconf"], env=env).zeroconf == "wyoming-verba"


def test_a_negative_number_reaches_the_check():
    with pytest.raises(SettingsError, match="--cooldown -1.0: must not be negative"):
        load_settings(["--cooldown", "-1"], env={})
    with pytest.raises(SettingsError, match="--output-rate: 'fast' is not a valid value"):
        load_settings(["--output-rate", "fast"], env={})


def test_settings_built_in_code_are_checked_too():
    with pytest.raises(SettingsError, match="--output-rate 1000"):
        Settings(output_rate=1000)
    with pytest.raises(SettingsError, match="remote_uri"):
        Settings(backend="remote,espeak")
    assert Settings(backend="remote", remote_uri="tcp://gpu:10200").backends == ("remote",)


def test_every_setting_has_a_flag_an_environment_name_and_help():
    seen: set[str] = set()
    for f, spec in declared():
        flag = flag_of(f)
        assert flag.startswith("--") and flag not in seen, f.name
        seen.add(flag)
        assert env_names(f)[0 if not spec.negation else 1].startswith("VERBA_"), f.name
        assert len(spec.help) > 10, f.name
        assert f"`{flag}" in options_markdown(), f.name


def test_http_settings():
    s = load_settings([], env={})
    assert s.http_port is None and s.http_host == "127.0.0.1" and s.http_api_key is None
    s = load_settings(["--http-port", "8099", "--http-voice", "alloy=en-US-AriaNeural",
                       "--http-voice", " echo = en-US-GuyNeural "], env={})
    assert s.http_port == 8099
    assert s.http_voices == (("alloy", "en-US-AriaNeural"), ("echo", "en-US-GuyNeural"))
    s = load_settings([], env={"VERBA_HTTP_VOICE": "nova=tone-de,onyx=tone-en",
                               "VERBA_HTTP_API_KEY": "k"})
    assert s.http_voices == (("nova", "tone-de"), ("onyx", "tone-en")) and s.http_api_key == "k"
    with pytest.raises(SettingsError, match="--http-voice 'alloy': use NAME=VOICE"):
        load_settings(["--http-voice", "alloy"], env={})
    with pytest.raises(SettingsError, match="--http-port 70000"):
        load_settings(["--http-port", "70000"], env={})


def test_say_leaves_the_http_port_to_the_running_server(tmp_path):
    """`say` starts a private server: with VERBA_HTTP_PORT set for the real one (whose
    port is taken), it must not try to listen there too."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = tmp_path / "hello.wav"
        assert main(["say", "Hello.", "-o", str(out), "--backend", "espeak",
                     "--data-dir", str(tmp_path), "--http-port", str(port)]) == 0
