"""CSM house voices: a take made once per voice without a clip, checked, kept in the data
directory and used as that voice's prompt across replies and restarts; the
`wyoming-verba csm-voices` command; a house voice taken from another backend's voice."""

from __future__ import annotations

import json
import os
import wave

import numpy as np
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.fakes.tiny_csm import shared_tiny_csm  # noqa: E402
from wyoming_verba.__main__ import main  # noqa: E402
from wyoming_verba.backends.base import Utterance  # noqa: E402
from wyoming_verba.backends.csm import CsmBackend  # noqa: E402
from wyoming_verba.backends.csm import house_voices as house  # noqa: E402
from wyoming_verba.backends.csm.generator import CsmGenerator  # noqa: E402
from wyoming_verba.backends.csm.house_voices import (  # noqa: E402
    HouseVoiceStore,
    check_reference,
)
from wyoming_verba.settings import Settings  # noqa: E402

RATE = 24000
SPOKEN = 10  # frames the tiny model speaks before its end frame in a passing take


def tone(seconds: float, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (level * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


# --- the check and the store ---------------------------------------------------------------


def test_a_take_is_checked_for_length_and_silence():
    assert check_reference(tone(6.0)) is None
    quiet = np.concatenate([np.zeros(RATE), tone(6.0), np.zeros(2 * RATE)])
    assert check_reference(quiet, "silence") is None  # silence at either end is trimmed
    assert "less than" in check_reference(tone(1.5))
    assert "more than" in check_reference(tone(16.0))
    assert "less than" in check_reference(np.zeros(6 * RATE, dtype=np.float32))
    gappy = np.concatenate([tone(0.5), np.zeros(5 * RATE, dtype=np.float32), tone(0.5)])
    assert "mostly silence" in check_reference(gappy)
    assert "did not finish" in check_reference(tone(6.0), "cap")
    assert "did not finish" in check_reference(tone(6.0), "repeat")


def test_store_keeps_take_and_transcript(tmp_path):
    store = HouseVoiceStore(tmp_path / "csm-voices")
    assert store.all() == [] and store.get("speaker-0") is None
    samples = np.concatenate([np.zeros(RATE // 2, dtype=np.float32), tone(4.0)])
    voice = store.save("speaker-0", samples, text="Hello.", speaker=0, seed=7, model="m")
    assert (voice.speaker, voice.seed, voice.text, voice.model) == (0, 7, "Hello.", "m")
    assert abs(voice.seconds - 4.0) < 0.1  # the leading silence was trimmed
    assert [v.name for v in store.all()] == ["speaker-0"]
    (tmp_path / "csm-voices" / "speaker-0.json").write_text("{broken")
    assert store.get("speaker-0") is None  # made again rather than half-read
    with pytest.raises(ValueError, match="voice name"):
        store.save("../escape", samples, text="x", speaker=0)
    assert store.delete("speaker-0") and not store.delete("speaker-0")


# --- made once, used from then on ------------------------------------------------------------


def settings(data, **kw) -> Settings:
    base = dict(csm_model=str(shared_tiny_csm()), csm_device="cpu", csm_seed=1,
                backend="csm", data_dirs=(data,), csm_house_voices="on")
    return Settings(**{**base, **kw})


@pytest.fixture
def takes(monkeypatch):
    """The tiny random model never ends a sentence: here its first take of the reference
    runs into the cap (and must be rejected); every later take speaks SPOKEN frames and
    ends. Returns the list of takes started."""
    started: list[int] = []
    state = {"take": None, "frames": 0}
    original_frames, original_next = CsmGenerator.frames, CsmGenerator.next_frame

    def frames(self, text, speaker, stop, **kw):
        state["take"] = None
        if text == house.REFERENCE_TEXT:
            started.append(speaker)
            state["take"], state["frames"] = len(started), 0
        return original_frames(self, text, speaker, stop, **kw)

    def next_frame(self, *a, **k):
        if state["take"] is not None and state["take"] > 1:
            state["frames"] += 1
            if state["frames"] > SPOKEN:
                return torch.zeros(32, dtype=torch.long)
        return original_next(self, *a, **k)

    monkeypatch.setattr(CsmGenerator, "frames", frames)
    monkeypatch.setattr(CsmGenerator, "next_frame", next_frame)
    monkeypatch.setattr("wyoming_verba.backends.csm.stopping.frame_cap", lambda text, *_: 20)
    monkeypatch.setattr(house, "MIN_S", 0.5)
    return started


async def prompts_of(backend, monkeypatch, *replies: str) -> list:
    seen = []
    original = backend._gen.frames

    def spy(text, speaker, stop, **kw):
        seen.append(kw["prefix"])
        return original(text, speaker, stop, **kw)

    monkeypatch.setattr(backend._gen, "frames", spy)
    for i, text in enumerate(replies):
        async for _ in backend.synthesize(text, backend.default_voice, None, Utterance(str(i))):
            pass
    return seen


async def test_house_voice_made_once_and_kept_across_replies_and_restarts(
        tmp_path, monkeypatch, takes):
    backend = CsmBackend(settings(tmp_path))
    await backend.start()
    try:
        # speaker-0 (the default) and speaker-1 are listed: one house voice each; the
        # first take ran into the cap and was rejected, the next seed passed
        assert takes == [0, 0, 1]
        meta = {n: json.loads((tmp_path / "csm-voices" / f"{n}.json").read_text())
                for n in ("speaker-0", "speaker-1")}
        assert meta["speaker-0"]["seed"] == 2 and meta["speaker-1"]["seed"] == 1
        assert meta["speaker-0"]["speaker"] == 0 and meta["speaker-1"]["speaker"] == 1
        text = (tmp_path / "csm-voices" / "speaker-0.txt").read_text().strip()
        assert text == house.REFERENCE_TEXT
        with wave.open(str(tmp_path / "csm-voices" / "speaker-0.wav")) as wav:
            assert wav.getframerate() == RATE and wav.getnframes() == SPOKEN * 1920
        assert "house voice" in backend.default_voice.description
        seen = await prompts_of(backend, monkeypatch, "First reply.", "Second reply.")
        kv, length = seen[0]
        assert length > 30  # the take's transcript and frames prefilled
        assert all(p[0] is kv for p in seen)  # the same prompt, reply after reply
        clip = (tmp_path / "csm-voices" / "speaker-0.wav").read_bytes()
    finally:
        await backend.stop()

    again = CsmBackend(settings(tmp_path))  # a restart: nothing made, the same take used
    await again.start()
    try:
        assert takes == [0, 0, 1]
        assert (tmp_path / "csm-voices" / "speaker-0.wav").read_bytes() == clip
        (prompt,) = await prompts_of(again, monkeypatch, "After the restart.")
        assert prompt[1] == length
    finally:
        await again.stop()


async def test_no_house_voice_when_off_or_when_every_take_fails(tmp_path, monkeypatch):
    monkeypatch.setattr("wyoming_verba.backends.csm.stopping.frame_cap", lambda text, *_: 5)
    backend = CsmBackend(settings(tmp_path, csm_house_voices="off"))
    await backend.start()
    await backend.stop()
    assert not (tmp_path / "csm-voices").exists()
    backend = CsmBackend(settings(tmp_path))  # on, but the tiny model always hits the cap
    await backend.start()
    try:
        assert not list((tmp_path / "csm-voices").glob("*.json"))
        (prompt,) = await prompts_of(backend, monkeypatch, "No prompt.")
        assert prompt == (None, 0)  # speaks, unprompted, rather than with a bad take
    finally:
        await backend.stop()


# --- the command ---------------------------------------------------------------------------


def test_csm_voices_command(tmp_path, capsys, takes):
    flags = ["--data-dir", str(tmp_path), "--csm-model", str(shared_tiny_csm()),
             "--csm-device", "cpu", "--csm-seed", "5"]
    assert main(["csm-voices", "list", *flags]) == 0
    assert "no house voices" in capsys.readouterr().out
    assert main(["csm-voices", "make", "butler", "--speaker", "2", *flags]) == 0
    assert main(["csm-voices", "make", "speaker-3", *flags]) == 0
    out = capsys.readouterr().out
    assert "made butler: speaker 2" in out and "made speaker-3: speaker 3" in out
    assert takes == [2, 2, 3]  # the first take is rejected: seeds 5, then 6; then 5 again
    # speaker-3 is speaker 3: a take labelled 2 would never prompt it
    assert main(["csm-voices", "make", "speaker-3", "--speaker", "2", *flags]) == 1
    assert "--speaker is for new names" in capsys.readouterr().err
    assert main(["csm-voices", "list", *flags]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in listed] == ["butler", "speaker-3"]
    assert "seed 6" in listed[0] and "seed 5" in listed[1]

    wav = tmp_path / "audition.wav"
    assert main(["csm-voices", "audition", "butler", "-o", str(wav), *flags]) == 0
    assert house.REFERENCE_TEXT in capsys.readouterr().out
    with wave.open(str(wav)) as w:
        assert w.getnframes() == SPOKEN * 1920

    assert main(["csm-voices", "delete", "speaker-3", *flags]) == 0
    assert main(["csm-voices", "delete", "speaker-3", *flags]) == 1
    assert main(["csm-voices", "audition", "nobody", *flags]) == 1


async def test_house_voice_from_another_backend_is_a_voice_of_its_own(tmp_path, capsys,
                                                                       monkeypatch):
    pytest.importorskip("espeakng_loader")
    flags = ["--data-dir", str(tmp_path)]
    code = await_main(["csm-voices", "make", "robot", "--from", "espeak:en-us",
                       "--speaker", "4", *flags])
    assert code == 0, capsys.readouterr().err
    voice = HouseVoiceStore(tmp_path / "csm-voices").get("robot")
    assert voice.source == "espeak:en-us" and voice.speaker == 4 and voice.model == ""
    assert check_reference(house.read_clip(voice.audio)) is None

    monkeypatch.setattr("wyoming_verba.backends.csm.stopping.frame_cap", lambda text, *_: 4)
    backend = CsmBackend(settings(tmp_path, csm_house_voices="off"))
    await backend.start()
    try:
        robot = backend.find_voice("robot")
        assert robot is not None and "espeak:en-us" in robot.description
        seen = []
        original = backend._gen.frames
        monkeypatch.setattr(backend._gen, "frames", lambda text, speaker, stop, **kw: (
            seen.append((speaker, kw["prefix"][1])) or original(text, speaker, stop, **kw)))
        async for _ in backend.synthesize("Beep.", robot, None, Utterance("r")):
            pass
        assert seen[0][0] == 4 and seen[0][1] > 30  # espeak's take prompts speaker 4
    finally:
        await backend.stop()


def await_main(argv: list[str]) -> int:
    """main() runs its own event loop: run it off this test's loop."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(main, argv).result()


async def test_a_house_voice_that_cannot_be_kept_does_not_stop_csm(tmp_path, monkeypatch,
                                                                   takes, caplog):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    backend = CsmBackend(settings(blocked))
    await backend.start()  # saving the take fails: logged, and CSM serves unprompted
    try:
        assert takes and "making its house voice failed" in caplog.text
        (prompt,) = await prompts_of(backend, monkeypatch, "Still speaks.")
        assert prompt == (None, 0)
    finally:
        await backend.stop()


async def test_house_voices_through_the_server(verba_server, tmp_path, takes, monkeypatch):
    from tests.client import describe, speak

    data = tmp_path / "data"
    srv = await verba_server("--backend", "csm", "--csm-model", str(shared_tiny_csm()),
                             "--csm-device", "cpu", "--csm-seed", "3", "--speaker", "1",
                             "--csm-house-voices", "on", "--data-dir", str(data))
    assert takes == [1, 1, 0]  # speaker-1 (the default): seeds 3 (rejected) and 4; speaker-0
    (program,) = (await describe(srv.uri)).tts
    assert [v.name for v in program.voices] == ["speaker-1", "speaker-0"]
    assert all("house voice" in v.description for v in program.voices)
    csm = srv.server.chain.live[0]
    seen = []
    original = csm._gen.frames
    monkeypatch.setattr(csm._gen, "frames", lambda text, speaker, stop, **kw: (
        seen.append(kw["prefix"][1]) or original(text, speaker, stop, **kw)))
    reply = await speak(srv.uri, "Hello from the house voice.")
    assert not reply.errors and reply.seconds > 0.5
    assert seen and seen[0] > 30  # prompted with speaker-1's take
    assert sorted(p.name for p in (data / "csm-voices").iterdir()) == [
        f"speaker-{n}.{ext}" for n in (0, 1) for ext in ("json", "txt", "wav")]


async def test_an_unreadable_house_voice_is_ignored_not_fatal(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr("wyoming_verba.backends.csm.stopping.frame_cap", lambda text, *_: 4)
    store = HouseVoiceStore(tmp_path / "csm-voices")
    for name in ("speaker-0", "guest"):
        store.save(name, tone(4.0), text="A tone.", speaker=0, source="espeak:en-us")
        (tmp_path / "csm-voices" / f"{name}.wav").write_bytes(b"not a wav any more")
    backend = CsmBackend(settings(tmp_path, csm_house_voices="off"))
    await backend.start()
    try:
        assert caplog.text.count("house voice unusable, ignored") == 2
        assert backend.find_voice("guest") is None
        (prompt,) = await prompts_of(backend, monkeypatch, "Unprompted.")
        assert prompt == (None, 0)
    finally:
        await backend.stop()
