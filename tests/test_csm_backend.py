"""The CSM backend on a tiny random checkpoint: loading, voices, context, queue, errors."""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import tempfile
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.fakes.tiny_csm import shared_tiny_csm  # noqa: E402
from wyoming_verba.backends.base import (  # noqa: E402
    BackendBusy,
    BackendError,
    BackendUnavailable,
    Pcm,
    SynthesisCancelled,
    Utterance,
    VoiceNotFound,
)
from wyoming_verba.backends.csm import CsmBackend, CsmOutOfMemory  # noqa: E402
from wyoming_verba.backends.csm import voices as csm_voices  # noqa: E402
from wyoming_verba.settings import Settings  # noqa: E402

FRAMES = 6  # per sentence in these tests: keeps the suite fast


def write_wav(path: Path, seconds: float, rate: int, channels: int = 1) -> None:
    t = np.arange(int(seconds * rate)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(tone, channels).tobytes())


@pytest.fixture
def voices_dir(tmp_path):
    d = tmp_path / "voices"
    d.mkdir()
    write_wav(d / "narrator.wav", 1.2, 44100, channels=2)
    (d / "narrator.txt").write_text("This is my reference voice.")
    (d / "narrator.json").write_text(json.dumps({"speaker": 1, "description": "calm"}))
    (d / "plain.json").write_text(json.dumps({"speaker": 3}))
    return d


@pytest.fixture(autouse=True)
def short_sentences(monkeypatch):
    monkeypatch.setattr("wyoming_verba.backends.csm.stopping.frame_cap", lambda text, *_: FRAMES)


_DATA = Path(tempfile.mkdtemp(prefix="csm-backend-data-"))  # never a user's house voices
atexit.register(shutil.rmtree, _DATA, True)


def settings(**kw) -> Settings:
    base = dict(csm_model=str(shared_tiny_csm()), csm_device="cpu", csm_seed=1,
                backend="csm", data_dirs=(_DATA,))
    return Settings(**{**base, **kw})


def test_stop_rules_come_from_the_settings(monkeypatch) -> None:
    monkeypatch.undo()  # the real frame cap, not the short one the other tests use
    backend = CsmBackend(settings(csm_max_sentence_seconds=2.0, csm_end_silence=0.8))
    rules = backend._stop_rules("A sentence long enough to reach the two-second cap.")
    assert rules.max_frames == 25 and rules.silence_frames == 10
    rules = CsmBackend(settings())._stop_rules("A sentence long enough for a longer cap.")
    assert rules.max_frames > 25 and rules.silence_frames == 25


async def started(**kw) -> CsmBackend:
    backend = CsmBackend(settings(**kw))
    await backend.start()
    return backend


async def speak(backend, text, utterance, voice=None, speaker=None) -> bytes:
    voice = voice or backend.default_voice
    out = b""
    async for chunk in backend.synthesize(text, voice, speaker, utterance):
        assert isinstance(chunk, Pcm) and chunk.rate == 24000 and chunk.width == 2
        out += chunk.audio
    return out


# --- voices files -------------------------------------------------------------------


def test_voices_directory_and_file(voices_dir, tmp_path):
    specs = {s.name: s for s in csm_voices.load_voices(voices_dir)}
    assert specs["narrator"].speaker == 1 and specs["narrator"].has_clip
    assert specs["narrator"].text == "This is my reference voice."
    assert specs["plain"].speaker == 3 and not specs["plain"].has_clip
    clip = csm_voices.read_clip(voices_dir / "narrator.wav")  # 44.1 kHz stereo in
    assert clip.dtype == np.float32 and abs(len(clip) - 1.2 * 24000) < 50
    assert 0.15 < float(np.abs(clip).max()) < 0.35

    f = tmp_path / "voices.json"
    f.write_text(json.dumps({"voices": {"guide": {"speaker": 2, "audio": "voices/narrator.wav",
                                                  "text": "Hi.", "language": "en-GB"}}}))
    (guide,) = csm_voices.load_voices(f)
    assert guide.audio == voices_dir / "narrator.wav" and guide.language == "en-GB"

    f.write_text(json.dumps({"voices": {"bad": {"audio": "voices/narrator.wav"}}}))
    with pytest.raises(csm_voices.VoicesFileError, match="transcript"):
        csm_voices.load_voices(f)
    with pytest.raises(csm_voices.VoicesFileError, match="no such"):
        csm_voices.load_voices(tmp_path / "missing")


def test_raw_speaker_voices_need_no_file():
    backend = CsmBackend(settings(speaker="4"))
    names = [v.name for v in backend.voices()]
    assert names == ["speaker-4", "speaker-0", "speaker-1"]
    assert backend.default_voice.name == "speaker-4"
    assert backend.find_voice("speaker-17").name == "speaker-17"
    assert backend.find_voice("nobody") is None
    assert not backend.voices()[0].installed  # not loaded yet: honest
    with pytest.raises(VoiceNotFound):
        csm_voices.find([], "nobody")


# --- loading ---------------------------------------------------------------------------


async def test_missing_model_names_the_fix(tmp_path):
    backend = CsmBackend(settings(csm_model="sesame/definitely-not-here"))
    with pytest.raises(BackendUnavailable) as err:
        await backend.start()
    message = str(err.value)
    assert "HF_TOKEN" in message and "--csm-model" in message and "licence" in message
    assert err.value.transient is False

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BackendUnavailable, match="CSM checkpoint"):
        await CsmBackend(settings(csm_model=str(empty))).start()


async def test_bad_voices_file_is_unavailable(tmp_path):
    bad = tmp_path / "v.json"
    bad.write_text("{nope")
    with pytest.raises(BackendUnavailable, match="v.json"):
        await CsmBackend(settings(csm_voices=bad)).start()


# --- synthesis --------------------------------------------------------------------------


def end_after(backend, monkeypatch, frames: int) -> None:
    """The model ends every sentence with its end frame after `frames` frames (the tiny
    random model never does by itself)."""
    original, original_frames, count = backend._gen.next_frame, backend._gen.frames, [0]

    def next_frame(*a, **k):
        count[0] += 1
        if count[0] > frames:
            return torch.zeros(32, dtype=torch.long)
        return original(*a, **k)

    def sentence(*a, **k):
        # One frame is always launched ahead of the one being read, so the count starts
        # again with each sentence, not after the end frame.
        count[0] = 0
        return original_frames(*a, **k)

    monkeypatch.setattr(backend._gen, "next_frame", next_frame)
    monkeypatch.setattr(backend._gen, "frames", sentence)


async def test_speaks_with_reference_clip_and_carries_context(voices_dir, monkeypatch):
    monkeypatch.setattr("wyoming_verba.backends.csm.stopping.frame_cap", lambda text, *_: 50)
    backend = await started(csm_voices=voices_dir, csm_context_sentences=2)
    try:
        end_after(backend, monkeypatch, FRAMES)
        voice = backend.find_voice("narrator")
        assert voice.installed and voice.description == "calm"
        encoded = []
        original_encode = backend._encode_clip
        monkeypatch.setattr(backend, "_encode_clip",
                            lambda spec: encoded.append(spec.name) or original_encode(spec))
        seen = []
        original_frames = backend._gen.frames

        def spy(text, speaker, stop, **kw):
            seen.append((text, speaker, kw["prefix"], [s.text for s in kw["context"]]))
            return original_frames(text, speaker, stop, **kw)

        monkeypatch.setattr(backend._gen, "frames", spy)
        utterance = Utterance("r1")
        texts = ["First sentence.", "Second one.", "Third one."]
        for text in texts:
            audio = await speak(backend, text, utterance, voice)
            assert len(audio) == FRAMES * 1920 * 2
            assert np.abs(np.frombuffer(audio, "<i2")).max() > 100
        assert encoded == []  # the clip was encoded once, at start-up
        assert [s[3] for s in seen] == [[], ["First sentence."], ["First sentence.",
                                                                  "Second one."]]
        assert all(s[1] == 1 for s in seen)  # the voice's speaker id
        prefix_kv, prefix_len = seen[0][2]
        assert prefix_len > 15 and all(s[2][0] is prefix_kv for s in seen)  # reused KV
        ctx = utterance.state["csm"]
        assert [s.text for s in ctx.segments] == ["Second one.", "Third one."]
        assert all(s.codes.shape == (FRAMES, 32) for s in ctx.segments)

        # a new reply starts without context; the request's speaker id overrides
        seen.clear()
        await speak(backend, "New reply.", Utterance("r2"), voice, speaker="0")
        assert seen[0][3] == [] and seen[0][1] == 0
    finally:
        await backend.stop()


async def test_the_model_reads_only_the_marks_it_speaks_well(monkeypatch):
    """Ellipses, dashes and "?!" never reach the model (it babbles on them), the sentence
    kept as context is the one it read, and a sentence with nothing speakable left is
    silence rather than a prompt of symbols."""
    monkeypatch.setattr("wyoming_verba.backends.csm.stopping.frame_cap", lambda text, *_: 50)
    backend = await started(csm_context_sentences=2)
    try:
        end_after(backend, monkeypatch, FRAMES)
        read = []
        original_frames = backend._gen.frames

        def spy(text, speaker, stop, **kw):
            read.append(text)
            return original_frames(text, speaker, stop, **kw)

        monkeypatch.setattr(backend._gen, "frames", spy)
        utterance = Utterance("r1")
        assert await speak(backend, "Well... the door — it is open?!", utterance)
        assert await speak(backend, "Done", utterance)
        assert await speak(backend, "…", utterance) == b""
        assert read == ["Well, the door, it is open?", "Done."]
        assert [s.text for s in utterance.state["csm"].segments] == read
    finally:
        await backend.stop()


async def test_seeded_output_is_reproducible():
    backend = await started()
    try:
        a = await speak(backend, "Same words.", Utterance("a"))
        b = await speak(backend, "Same words.", Utterance("b"))
        assert a == b and len(a) == FRAMES * 1920 * 2
    finally:
        await backend.stop()


async def test_cancel_stops_generation_at_next_frame(monkeypatch):
    monkeypatch.setattr("wyoming_verba.backends.csm.stopping.frame_cap", lambda text, *_: 200)
    backend = await started()
    try:
        frames = []
        original = backend._gen.next_frame

        def counting(*a, **k):
            frames.append(1)
            return original(*a, **k)

        monkeypatch.setattr(backend._gen, "next_frame", counting)
        utterance = Utterance("c")
        got = 0
        with pytest.raises(SynthesisCancelled):
            async for _chunk in backend.synthesize("Long sentence here.", backend.default_voice,
                                                   None, utterance):
                got += 1
                utterance.cancel.cancel()
        await asyncio.sleep(0.3)
        assert got == 1
        assert len(frames) < 10  # 2 for the first chunk, then at most one more frame or so
        assert backend._in_flight == 0
        assert "csm" not in utterance.state or not utterance.state["csm"].segments
    finally:
        await backend.stop()


async def test_consumer_leaving_stops_the_worker(monkeypatch):
    monkeypatch.setattr("wyoming_verba.backends.csm.stopping.frame_cap", lambda text, *_: 200)
    backend = await started()
    try:
        frames = []
        original = backend._gen.next_frame
        monkeypatch.setattr(backend._gen, "next_frame",
                            lambda *a, **k: frames.append(1) or original(*a, **k))
        agen = backend.synthesize("Walk away.", backend.default_voice, None, Utterance("w"))
        await agen.__anext__()
        await agen.aclose()  # like a client that disconnected
        await asyncio.sleep(0.5)
        assert len(frames) < 12
        monkeypatch.setattr("wyoming_verba.backends.csm.stopping.frame_cap", lambda t, *_: FRAMES)
        audio = await speak(backend, "Next one works.", Utterance("n"))  # worker is free
        assert len(audio) == FRAMES * 1920 * 2
    finally:
        await backend.stop()


async def test_queue_full_is_busy(monkeypatch):
    backend = await started(max_gpu_queue=1)
    try:
        release = asyncio.Event()
        loop = asyncio.get_running_loop()
        original = backend._gen.next_frame

        def slow(*a, **k):
            asyncio.run_coroutine_threadsafe(release.wait(), loop).result(10)
            return original(*a, **k)

        monkeypatch.setattr(backend._gen, "next_frame", slow)
        first = asyncio.create_task(speak(backend, "One.", Utterance("1")))
        await asyncio.sleep(0.2)
        assert backend._in_flight == 1
        second = asyncio.create_task(speak(backend, "Two.", Utterance("2")))  # waits
        await asyncio.sleep(0.1)
        with pytest.raises(BackendBusy, match="GPU queue full"):
            await speak(backend, "Three.", Utterance("3"))
        release.set()
        assert len(await first) == len(await second) == FRAMES * 1920 * 2
    finally:
        await backend.stop()


async def test_failures_are_typed(monkeypatch):
    backend = await started()
    try:
        def oom(*a, **k):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")

        monkeypatch.setattr(backend._gen, "next_frame", oom)
        with pytest.raises(CsmOutOfMemory, match="out of memory") as err:
            await speak(backend, "Boom.", Utterance("o"))
        assert err.value.transient and isinstance(err.value, BackendUnavailable)

        def broken(*a, **k):
            raise IndexError("index 2049 is out of bounds")

        monkeypatch.setattr(backend._gen, "next_frame", broken)
        with pytest.raises(BackendError, match="IndexError"):
            await speak(backend, "Boom.", Utterance("e"))
        monkeypatch.undo()
        monkeypatch.setattr("wyoming_verba.backends.csm.stopping.frame_cap", lambda t, *_: FRAMES)
        assert len(await speak(backend, "Recovered.", Utterance("r"))) == FRAMES * 1920 * 2
    finally:
        await backend.stop()


# --- review fixes: queue admission, start-up failure and cancellation, bad clips ----------


async def _flush_worker(backend) -> None:
    """Wait until everything already queued on the CSM worker thread has run."""
    await asyncio.get_running_loop().run_in_executor(backend._executor, lambda: None)


async def test_simultaneous_requests_respect_max_gpu_queue(monkeypatch):
    backend = await started(max_gpu_queue=1)
    gate = threading.Event()
    try:
        original = backend._gen.next_frame

        def gated(*a, **k):
            gate.wait(10)
            return original(*a, **k)

        monkeypatch.setattr(backend._gen, "next_frame", gated)
        # all eight arrive before the worker has started any of them
        tasks = [asyncio.create_task(speak(backend, f"Number {i}.", Utterance(str(i))))
                 for i in range(8)]
        await asyncio.sleep(0)  # every task has made its admission decision
        gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        busy = [r for r in results if isinstance(r, BackendBusy)]
        spoken = [r for r in results if isinstance(r, bytes)]
        assert len(busy) == 6 and len(spoken) == 2  # 1 running + max_gpu_queue waiting
        assert all(len(audio) == FRAMES * 1920 * 2 for audio in spoken)
        assert backend._in_flight == 0
    finally:
        gate.set()
        await backend.stop()


async def test_abandoned_sentences_give_their_place_back(monkeypatch):
    monkeypatch.setattr("wyoming_verba.backends.csm.stopping.frame_cap", lambda text, *_: 200)
    backend = await started(max_gpu_queue=1)
    try:
        running = backend.synthesize("Long one.", backend.default_voice, None, Utterance("a"))
        await running.__anext__()
        waiting = asyncio.create_task(speak(backend, "Waits.", Utterance("w")))
        await asyncio.sleep(0)
        assert backend._in_flight == 2
        with pytest.raises(BackendBusy):
            await speak(backend, "Refused.", Utterance("b"))
        waiting.cancel()  # e.g. the chain's timeout gave up on a queued sentence
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert backend._in_flight == 1  # its place is free at once
        await running.aclose()  # the consumer went away mid-sentence
        await _flush_worker(backend)  # the worker noticed and let go of the sentence
        assert backend._in_flight == 0
        monkeypatch.setattr("wyoming_verba.backends.csm.stopping.frame_cap", lambda t, *_: FRAMES)
        assert len(await speak(backend, "Accepted.", Utterance("c"))) == FRAMES * 1920 * 2
        assert backend._in_flight == 0
    finally:
        await backend.stop()


async def test_failed_start_releases_the_model(monkeypatch):
    def broken_warm_up(self):
        raise RuntimeError("graph capture exploded")

    monkeypatch.setattr(CsmBackend, "_warm_up", broken_warm_up)
    backend = CsmBackend(settings())
    with pytest.raises(BackendUnavailable, match="every mode"):
        await backend.start()
    assert backend._loaded is None and backend._gen is None and not backend._clip_codes
    assert not any(v.installed for v in backend.voices())
    with pytest.raises(RuntimeError):  # the worker was shut down
        backend._executor.submit(lambda: None)
    await backend.stop()  # harmless after a failed start


async def test_cancelled_start_stops_loading_and_releases(monkeypatch):
    from wyoming_verba.backends.csm import loader

    loading, go = threading.Event(), threading.Event()
    original_load = loader.load_model

    def slow_load(*a, **k):
        loading.set()
        go.wait(10)
        return original_load(*a, **k)

    warmed = []
    monkeypatch.setattr(loader, "load_model", slow_load)
    monkeypatch.setattr(CsmBackend, "_warm_up", lambda self: warmed.append(1))
    backend = CsmBackend(settings())
    task = asyncio.create_task(backend.start())
    assert await asyncio.to_thread(loading.wait, 10)
    task.cancel()  # what chain.stop() does to a backend still loading
    with pytest.raises(asyncio.CancelledError):
        await task
    go.set()
    threads = list(backend._executor._threads)
    await asyncio.to_thread(lambda: [t.join(10) for t in threads])
    assert not any(t.is_alive() for t in threads)  # nothing left to hold up the exit
    assert warmed == []  # warm-up never started
    assert backend._loaded is None and backend._gen is None


async def test_bad_reference_clip_names_the_file_before_loading(tmp_path, monkeypatch):
    from wyoming_verba.backends.csm import loader

    d = tmp_path / "voices"
    d.mkdir()
    (d / "broken.wav").write_bytes(b"this is not a wav file at all")
    (d / "broken.txt").write_text("Some words.")
    loads = []
    original_load = loader.load_model
    monkeypatch.setattr(loader, "load_model",
                        lambda *a, **k: loads.append(1) or original_load(*a, **k))
    backend = CsmBackend(settings(csm_voices=d, csm_compile="on"))  # compiled → eager fallback
    with pytest.raises(BackendUnavailable) as err:
        await backend.start()
    message = str(err.value)
    assert "broken.wav" in message and "WAV" in message and "every mode" not in message
    assert err.value.transient is False
    assert loads == []  # the model was never loaded for a voice that cannot work
    assert backend._loaded is None and backend._gen is None


async def test_synthesize_errors_are_typed(monkeypatch):
    backend = await started()
    try:
        # an odd speaker string is ignored, not a ValueError
        assert len(await speak(backend, "Odd speaker.", Utterance("s"), speaker="²")) > 0
        await backend.stop()
        with pytest.raises(BackendUnavailable):
            await speak(backend, "After stop.", Utterance("x"))
        assert backend._in_flight == 0
    finally:
        await backend.stop()


# --- issue 12: one speaker per prompt, stop rules that suit the real model -----------------


async def test_speaker_override_relabels_the_clip_too(voices_dir, monkeypatch):
    """The clip and the new sentence must be one speaker: an override that labelled the
    clip [1] and the sentence [0] asked the model to answer as someone else."""
    backend = await started(csm_voices=voices_dir)
    try:
        prompts, targets = [], []
        original_prefix, original_frames = backend._gen.prefix, backend._gen.frames
        monkeypatch.setattr(backend._gen, "prefix", lambda key, segs: prompts.append(
            [s.speaker for s in segs]) or original_prefix(key, segs))
        monkeypatch.setattr(backend._gen, "frames", lambda text, speaker, stop, **kw: (
            targets.append(speaker) or original_frames(text, speaker, stop, **kw)))
        voice = backend.find_voice("narrator")  # its clip is speaker 1
        await speak(backend, "As myself.", Utterance("a"), voice)
        await speak(backend, "As speaker zero.", Utterance("b"), voice, speaker="0")
        assert targets == [1, 0]
        assert prompts == [[1], [0]]  # each prompt labelled as its sentence's speaker
    finally:
        await backend.stop()


async def test_a_cut_sentence_is_not_kept_as_context(monkeypatch):
    backend = await started(csm_context_sentences=2)
    try:
        utterance = Utterance("cut")
        await speak(backend, "Runs into the cap.", utterance)  # the cap (FRAMES) stops it
        assert not utterance.state["csm"].segments
        monkeypatch.setattr("wyoming_verba.backends.csm.stopping.frame_cap",
                            lambda text, *_: 50)
        end_after(backend, monkeypatch, FRAMES)
        await speak(backend, "Ends by itself.", utterance)
        assert [s.text for s in utterance.state["csm"].segments] == ["Ends by itself."]
    finally:
        await backend.stop()


async def test_silence_stopped_and_trailing_silence_not_kept(monkeypatch):
    """Real Mimi decodes some codes to near-silence; here every frame whose codebook 0
    is even does (the tiny codec decodes everything loudly)."""
    from wyoming_verba.backends.csm import stream

    real_decode = stream.MimiStreamDecoder.decode

    def decode(self, codes):
        audio = real_decode(self, codes)
        quiet = (codes[:, 0] % 2 == 0).repeat_interleave(1920)
        return torch.where(quiet, audio * 1e-4, audio)

    monkeypatch.setattr(stream.MimiStreamDecoder, "decode", decode)
    monkeypatch.setattr("wyoming_verba.backends.csm.stopping.frame_cap", lambda text, *_: 50)
    backend = await started(csm_context_sentences=3, csm_end_silence=0.24)  # 3 quiet frames
    try:
        def script(frames: list[list[int]]) -> None:
            # The frame launched ahead of a stop is never read: any codes will do.
            codes = iter(frames)
            monkeypatch.setattr(backend._gen, "next_frame",
                                lambda *a, **k: torch.tensor(next(codes, [1] * 32)))

        script([[3] * 32, [5] * 32, [2] * 32, [0] * 31 + [1]])  # speech, quiet, end
        utterance = Utterance("quiet")
        audio = await speak(backend, "Ends then hums.", utterance)
        assert len(audio) == 2 * 1920 * 2  # the quiet frame before the end is trimmed
        (kept,) = utterance.state["csm"].segments
        assert kept.codes[:, 0].tolist() == [3, 5]  # ... from the context too
        script([[7] * 32, [4] * 32, [6] * 32, [8] * 32, [9] * 32])  # quiet x3: stop
        audio = await speak(backend, "Falls silent.", utterance)
        # [7, 4] went out as the first chunk; [6, 8] made three quiet frames in a row: the
        # silence rule fired and that chunk, all silence, is not played
        assert len(audio) == 2 * 1920 * 2
        assert len(utterance.state["csm"].segments) == 1  # nor kept
    finally:
        await backend.stop()


async def test_a_cut_fades_out_instead_of_clicking():
    backend = await started()
    try:
        audio = np.frombuffer(await speak(backend, "Runs into the cap.", Utterance("f")), "<i2")
        assert len(audio) == FRAMES * 1920
        level = np.abs(audio.astype(float))
        assert level[:-120].mean() > 1000  # the tiny codec is loud all the way
        # the cut ramps down to nothing over 5 ms (120 samples): the last 12 are at most a
        # tenth of the loudest
        assert level[-12:].max() <= 0.1 * level.max() and audio[-1] == 0
    finally:
        await backend.stop()


def test_compile_caches_are_kept_in_the_data_directory(monkeypatch, tmp_path) -> None:
    """torch.compile's caches default to /tmp, which a container loses on restart: they go
    to the data directory, unless the user placed them (the variable already set)."""
    from wyoming_verba.backends.csm.backend import keep_compile_cache

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("TRITON_CACHE_DIR", "/somewhere/else")
    keep_compile_cache(tmp_path / "torch-compile-cache")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "torch-compile-cache/inductor")
    assert os.environ["TRITON_CACHE_DIR"] == "/somewhere/else"
