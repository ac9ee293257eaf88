"""The failover chain with injected faults: every word heard once, in one format."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np
import pytest

from tests.client import describe, speak, speak_streaming
from tests.fakes.tone_backend import Faults, ToneBackend, dominant_frequency
from wyoming_verba.backends.base import (
    BackendBusy,
    BackendError,
    BackendUnavailable,
    SynthesisCancelled,
    Utterance,
    Voice,
    VoiceNotFound,
)
from wyoming_verba.backends.chain import AllBackendsFailed, BackendChain, SentenceOutcome
from wyoming_verba.pcm import Pcm


def two_tones(**faults) -> tuple[ToneBackend, ToneBackend]:
    first = ToneBackend(name="first", frequency=440.0, rate=16000, faults=Faults(**faults))
    second = ToneBackend(name="second", frequency=1000.0, rate=22050)
    return first, second


async def chain_of(*backends, **kwargs) -> BackendChain:
    chain = BackendChain(list(backends), **kwargs)
    await chain.start()
    return chain


async def collect(chain: BackendChain, text: str, outcome=None) -> list[tuple[str, object]]:
    choice = chain.resolve(None)
    return [item async for item in chain.speak(text, choice, Utterance("t"), outcome)]


async def test_healthy_first_backend_speaks_everything():
    first, second = two_tones()
    chain = await chain_of(first, second)
    out = await collect(chain, "all is well here")
    assert {name for name, _ in out} == {"first"}
    assert first.spoken == ["all is well here"] and second.attempts == []


async def test_failure_before_audio_goes_to_the_next_backend():
    first, second = two_tones(fail_before_audio=1)
    chain = await chain_of(first, second)
    outcome = SentenceOutcome()
    out = await collect(chain, "the door is open", outcome)
    assert {name for name, _ in out} == {"second"}
    assert second.spoken == ["the door is open"]
    assert outcome.spoken_by == ["second"] and outcome.failures[0][0] == "first"


async def test_failure_mid_sentence_resumes_after_the_last_sent_word():
    first, second = two_tones(fail_after_words=3)
    chain = await chain_of(first, second)
    out = await collect(chain, "one two three four five")
    assert [name for name, _ in out][0] == "first"
    # first spoke three words; the second speaks exactly the rest, nothing twice.
    assert second.spoken == ["four five"]


async def test_timeout_before_audio_fails_over():
    first, second = two_tones(first_delay=5.0)
    chain = await chain_of(first, second, sentence_timeout=0.2)
    out = await collect(chain, "hello there")
    assert {name for name, _ in out} == {"second"}


async def test_stall_mid_sentence_fails_over_with_the_rest():
    first, second = two_tones(stall_after_words=2)
    chain = await chain_of(first, second, sentence_timeout=0.3)
    await collect(chain, "alpha beta gamma delta")
    assert second.spoken == ["gamma delta"]


async def test_all_failing_raises_with_every_reason():
    first, second = two_tones(fail_before_audio=1)
    second.faults.fail_before_audio = 1
    chain = await chain_of(first, second)
    with pytest.raises(AllBackendsFailed) as info:
        await collect(chain, "nobody can say this")
    assert "first" in str(info.value) and "second" in str(info.value)


async def test_breaker_skips_a_failing_backend_then_probes_it_again():
    now = [0.0]
    first, second = two_tones(fail_before_audio=2)
    chain = await chain_of(first, second, cooldown=30.0, clock=lambda: now[0])
    await collect(chain, "one")
    await collect(chain, "two")  # second consecutive failure trips the breaker
    assert not chain.usable(first)
    await collect(chain, "three")
    assert first.attempts == ["one", "two"]  # skipped while cooling down
    # Its voices stay listed as installed: the chain stands in for them meanwhile.
    assert all(v.installed for b, v in chain.voices() if b is first)
    now[0] = 31.0
    await collect(chain, "four")
    assert first.spoken == ["four"] and chain.usable(first)


async def test_busy_backend_is_skipped_without_tripping_the_breaker():
    first, second = two_tones(fail_before_audio=3, error=BackendBusy)
    chain = await chain_of(first, second)
    for text in ("a", "b", "c"):
        await collect(chain, text)
    assert chain.usable(first) and second.spoken == ["a", "b", "c"]


async def test_backend_that_fails_to_start_is_left_out():
    class Broken(ToneBackend):
        async def start(self) -> None:
            raise BackendUnavailable("no model here")

    broken, good = Broken(name="broken"), ToneBackend(name="good")
    chain = await chain_of(broken, good)
    assert chain.live == [good] and chain.down == {"broken": "no model here"}


async def test_auto_output_rate_is_the_first_backend_that_knows_its_own():
    class Broken(ToneBackend):
        async def start(self) -> None:
            raise BackendUnavailable("no model here")

    broken = Broken(name="broken", rate=8000, knows_rate=True)
    unknown = ToneBackend(name="unknown", rate=44100)  # a remote server: known when heard
    known = ToneBackend(name="known", rate=16000, knows_rate=True)
    later = ToneBackend(name="later", rate=22050, knows_rate=True)
    assert (await chain_of(broken, unknown, known, later)).native_rate() == 16000
    assert (await chain_of(unknown)).native_rate() is None


async def test_voice_resolution_and_mapping():
    first, second = two_tones()
    second.voices_ = [type(v)(f"second-{v.name}", v.languages) for v in second.voices_]
    chain = await chain_of(first, second)
    choice = chain.resolve("second-tone-de")
    assert choice.owner == "second" and choice.language == "de-DE"
    # The first backend speaks the same language on the chosen voice's behalf.
    voice, _speaker = chain.voice_for(first, choice)
    assert voice.name == "tone-de"
    with pytest.raises(VoiceNotFound):
        chain.resolve("missing")
    with pytest.raises(VoiceNotFound):
        chain.resolve(None, language="xx")


# --- through the server: one format, each sentence once, the right backend -------------


async def test_failover_inside_one_stream_keeps_one_format(verba_server):
    first, second = two_tones(fail_after_words=2)
    srv = await verba_server("--sentence-pause", "0", backends=[first, second])
    reply = await speak_streaming(srv.uri, ["Alpha beta gamma delta. ", "Epsilon zeta."])
    assert reply.errors == []
    assert reply.types.count("audio-start") == 1
    assert reply.chunk_formats == {(24000, 2, 1)}
    assert first.spoken == ["Epsilon zeta."]
    assert second.spoken == ["gamma delta."]
    # Every word was heard once: total audio = the tone length of all the words.
    words = "Alpha beta gamma delta. Epsilon zeta.".split()
    expected = sum(len(w) + 1 for w in words) * 0.02
    assert reply.seconds == pytest.approx(expected, abs=0.05)
    # The audio shows who spoke: 440 Hz, then 1 kHz, then 440 Hz again.
    samples = reply.samples
    per = int(0.1 * 24000)
    head = dominant_frequency(samples[:per], 24000)
    assert abs(head - 440) < 30


async def test_auto_rate_is_the_first_backends_and_a_fallback_is_resampled_to_it(
        verba_server):
    first, second = two_tones(fail_after_words=2)
    first.knows_rate = second.knows_rate = True
    srv = await verba_server("--sentence-pause", "0", backends=[first, second])
    reply = await speak(srv.uri, "Alpha beta gamma delta.")
    assert reply.errors == [] and reply.chunk_formats == {(16000, 2, 1)}
    assert second.spoken == ["gamma delta."]
    # Second's 22,050 Hz tone, resampled: still 1 kHz, at the reply's 16 kHz.
    tail = reply.samples[-int(0.1 * 16000):]
    assert abs(dominant_frequency(tail, 16000) - 1000) < 30
    fixed = await verba_server("--output-rate", "24000", backends=list(two_tones()))
    assert (await speak(fixed.uri, "Alpha.")).rate == 24000


async def test_everything_failing_sends_error_then_ends_properly(verba_server):
    first, second = two_tones(fail_before_audio=9)
    second.faults.fail_before_audio = 9
    srv = await verba_server(backends=[first, second])
    plain = await speak(srv.uri, "Nobody can speak.")
    assert [e.code for e in plain.errors] == ["synthesis-failed"]
    streamed = await speak_streaming(srv.uri, ["Still nobody. "])
    assert streamed.types[-2:] == ["error", "synthesize-stopped"]
    assert (await describe(srv.uri)).tts  # the server keeps serving


async def test_cache_replays_a_repeated_announcement(verba_server):
    tone = ToneBackend()
    srv = await verba_server("--cache-mb", "1", backends=[tone])
    first = await speak(srv.uri, "The front door is open.")
    second = await speak(srv.uri, "The front door is open.")
    assert first.audio == second.audio and first.seconds > 0.3
    assert tone.attempts == ["The front door is open."]
    assert srv.app.cache is not None and len(srv.app.cache) == 1


async def test_audio_cache_is_bounded():
    from wyoming_verba.audio import AudioFormat
    from wyoming_verba.cache import AudioCache

    chain = await chain_of(ToneBackend())
    cache = AudioCache(10_000, chain)
    choice = chain.resolve(None)
    for i in range(20):
        cache.put(cache.key(f"s{i}", choice, AudioFormat()), bytes(2000))
    assert cache.bytes <= 10_000 and len(cache) == 5
    assert cache.get(cache.key("s19", choice, AudioFormat())) is not None
    assert cache.get(cache.key("s0", choice, AudioFormat())) is None


def test_tone_helper_sanity():
    from tests.fakes.tone_backend import tone

    samples = np.frombuffer(tone(1000.0, 0.2, 16000), dtype="<i2")
    assert abs(dominant_frequency(samples, 16000) - 1000) < 10
    assert asyncio is not None


async def test_voice_map_names_the_stand_in_on_other_backends():
    first, second = two_tones()
    first.voices_ = [type(v)(f"first-{v.name}", v.languages) for v in first.voices_]
    chain = await chain_of(first, second,
                           voice_map=(("first-tone-en", "tone-de"), ("first-tone-en", "x")))
    choice = chain.resolve("first-tone-en")
    voice, _ = chain.voice_for(second, choice)
    assert voice.name == "tone-de"  # configured, although the language differs
    other = chain.resolve("first-tone-de")
    assert chain.voice_for(second, other)[0].name == "tone-de"  # same language


def test_voice_map_setting():
    from wyoming_verba.settings import SettingsError, load_settings

    s = load_settings(["--voice-map", "speaker-0=en-US-GuyNeural"],
                      env={"VERBA_VOICE_MAP": "a=b,c=d"})
    assert s.voice_map == (("speaker-0", "en-US-GuyNeural"),)
    assert load_settings([], env={"VERBA_VOICE_MAP": "a=b,c=d"}).voice_map == (("a", "b"),
                                                                              ("c", "d"))
    with pytest.raises(SettingsError, match="VOICE=STAND_IN"):
        load_settings(["--voice-map", "nonsense"], env={})


async def test_a_missing_voice_does_not_trip_the_breaker():
    first, second = two_tones(fail_before_audio=3, error=VoiceNotFound)
    chain = await chain_of(first, second)
    for text in ("a", "b", "c"):
        await collect(chain, text)
    assert chain.usable(first) and second.spoken == ["a", "b", "c"]


class SlowStart(ToneBackend):
    async def start(self) -> None:
        await asyncio.sleep(0.5)


async def test_slow_backends_join_the_chain_when_ready():
    slow, fast = SlowStart(name="slow"), ToneBackend(name="fast")
    chain = BackendChain([slow, fast])
    await chain.start(grace=0.05)
    assert chain.live == [fast]
    assert {name for name, _ in await collect(chain, "early words")} == {"fast"}
    await asyncio.sleep(0.6)
    assert chain.live == [slow, fast]  # in its configured place
    assert {name for name, _ in await collect(chain, "later words")} == {"slow"}
    await chain.stop()


async def test_start_waits_for_a_first_live_backend_beyond_the_grace():
    slow = SlowStart(name="slow")
    chain = BackendChain([slow])
    await chain.start(grace=0.0)
    assert chain.live == [slow]


async def cooled_down(first_delay: float):
    """A chain whose first backend tripped its breaker and has just cooled down."""
    now = [0.0]
    first, second = two_tones(fail_before_audio=2)
    chain = await chain_of(first, second, cooldown=30.0, clock=lambda: now[0])
    await collect(chain, "one")
    await collect(chain, "two")
    now[0] = 31.0
    first.faults.first_delay = first_delay
    return chain, first, second


async def test_after_the_cooldown_one_sentence_probes_while_others_skip():
    # The probe is slow: meanwhile other sentences go elsewhere.
    chain, first, second = await cooled_down(first_delay=0.3)
    probe = asyncio.create_task(collect(chain, "probe"))
    await asyncio.sleep(0.05)
    assert not chain.usable(first)
    await collect(chain, "meanwhile")
    assert second.spoken[-1] == "meanwhile"
    await probe
    assert first.spoken == ["probe"] and chain.usable(first)


async def test_a_cancelled_probe_leaves_the_backend_probeable():
    chain, first, _second = await cooled_down(first_delay=5.0)
    probe = asyncio.create_task(collect(chain, "probe"))
    await asyncio.sleep(0.05)
    probe.cancel()
    await asyncio.gather(probe, return_exceptions=True)
    assert chain.usable(first)


async def test_a_pinned_voice_is_spoken_by_its_owner_first():
    """The HTTP API pins a voice it was asked for by name: its own backend speaks it even
    behind another in the chain, and the others stand in only while it fails. Unpinned,
    the chain's order decides, as for Home Assistant."""
    from dataclasses import replace

    first, second = two_tones()
    second.voices_ = [Voice("second-de", ("de-DE",), "")]
    chain = await chain_of(first, second)
    choice = chain.resolve("second-de")

    async def spoken_by(c) -> set[str]:
        return {name async for name, _ in chain.speak("guten tag", c, Utterance("t"))}

    assert await spoken_by(choice) == {"first"}
    pinned = replace(choice, pinned=True)
    assert await spoken_by(pinned) == {"second"}
    assert chain.first_usable(pinned) == "second" and chain.first_usable(choice) == "first"
    second.faults.fail_before_audio = 1
    assert await spoken_by(pinned) == {"first"}  # the owner failed: failover as ever


# --- the breaker's word to the operator, and what a success resets -----------------


async def test_a_tripped_breaker_is_reported_once_and_its_recovery_too(caplog):
    now = [0.0]
    first, second = two_tones(fail_before_audio=4)
    chain = await chain_of(first, second, cooldown=30.0, clock=lambda: now[0])
    caplog.set_level("INFO", logger="wyoming_verba.backends.chain")
    for text in ("one", "two"):
        await collect(chain, text)
    now[0] = 31.0
    await collect(chain, "three")  # the probe fails: still open, not reported again
    now[0] = 62.0
    await collect(chain, "four")  # and once more
    trips = [r for r in caplog.records if "skipping it for" in r.getMessage()]
    assert [r.getMessage() for r in trips] == [
        "first failed 2 time(s) (first: injected failure); skipping it for 30 s"]
    assert trips[0].levelname == "WARNING"
    now[0] = 93.0
    await collect(chain, "five")
    assert first.spoken == ["five"] and chain.usable(first)
    assert any(r.getMessage() == "first is speaking again" for r in caplog.records)


async def test_a_success_forgets_earlier_failures():
    first, second = two_tones(fail_before_audio=1)
    chain = await chain_of(first, second)
    await collect(chain, "one")  # fails once
    await collect(chain, "two")  # speaks: the count starts again
    first.faults.fail_before_audio = 1
    await collect(chain, "three")  # one failure after a success does not trip it
    assert chain.usable(first)
    await collect(chain, "four")
    assert first.spoken == ["two", "four"]


async def test_a_crash_is_logged_with_its_traceback_and_named_in_the_outcome(caplog):
    class Crashing(ToneBackend):
        async def synthesize(self, text, voice, speaker, utterance):
            raise RuntimeError("boom")
            yield  # pragma: no cover - makes this an async generator

    crashing, second = Crashing(name="crashing"), ToneBackend(name="second")
    chain = await chain_of(crashing, second)
    outcome = SentenceOutcome()
    await collect(chain, "hello", outcome)
    assert outcome.failures == [("crashing", "RuntimeError: boom")]
    crash = [r for r in caplog.records if r.getMessage() == "crashing crashed on a sentence"]
    assert len(crash) == 1 and crash[0].levelname == "ERROR" and crash[0].exc_info is not None
    # An ordinary backend error is no crash: no traceback for it.
    first, other = two_tones(fail_before_audio=1)
    caplog.clear()
    await collect(await chain_of(first, other), "hello")
    assert not [r for r in caplog.records if "crashed" in r.getMessage()]


async def test_a_failure_after_the_client_left_is_not_held_against_the_backend():
    class DiesAfterAudio(ToneBackend):
        async def synthesize(self, text, voice, speaker, utterance):
            yield Pcm(b"\x00\x01" * 160, self.rate)
            raise BackendError("lost its connection", backend=self.name)

    first, second = DiesAfterAudio(name="first"), ToneBackend(name="second")
    chain = await chain_of(first, second)
    utterance = Utterance("t")
    with pytest.raises(SynthesisCancelled):
        async for _name, _pcm in chain.speak("one two three", chain.resolve(None), utterance):
            utterance.cancel.cancel()
    assert chain.breakers["first"].failures == 0 and second.attempts == []


async def test_stop_stops_every_backend_even_if_one_fails_to():
    class BadStop(ToneBackend):
        async def stop(self) -> None:
            raise RuntimeError("cannot stop")

    class Stops(ToneBackend):
        stopped = False

        async def stop(self) -> None:
            self.stopped = True

    bad, good = BadStop(name="bad"), Stops(name="good")
    slow = SlowStart(name="slow")
    chain = BackendChain([bad, good, slow])
    await chain.start(grace=0.0)
    await chain.stop()  # no exception, and the slow starter is given up
    assert good.stopped and slow not in chain.live


async def test_voices_list_each_name_once_and_first_usable_follows_the_order():
    first, second = two_tones()
    first.typical_loudness, second.typical_loudness = -20.0, -30.0
    chain = await chain_of(first, second)
    assert [(b.name, v.name) for b, v in chain.voices()] == [
        ("first", "tone-en"), ("first", "tone-de")]
    assert chain.first_usable() == "first"
    assert chain.typical_loudness("second") == -30.0 and chain.typical_loudness("x") is None
    assert BackendChain([]).first_usable() is None


async def test_the_lost_hedge_is_closed_at_once_and_not_counted(caplog):
    caplog.set_level("INFO", logger="wyoming_verba.backends.chain")
    slow = ToneBackend(name="slow", frequency=300.0, faults=Faults(first_delay=0.3))
    hedge = ToneBackend(name="hedge", frequency=500.0, faults=Faults(first_delay=5.0))
    third = ToneBackend(name="third")
    chain = await chain_of(slow, hedge, third, sentence_timeout=30.0)
    outcome = SentenceOutcome()
    loop = asyncio.get_running_loop()
    started = loop.time()
    got = [name async for name, _ in chain.speak("one two", chain.resolve(None), Utterance("t"),
                                                 outcome, started + 0.1)]
    assert set(got) == {"slow"} and outcome.hedged == ["hedge"] and third.attempts == []
    assert hedge.cancelled == 1 and hedge.streams_ended == 1  # closed, not left to time out
    assert chain.breakers["hedge"].failures == 0 and chain.usable(hedge)
    assert ("slow has no audio by the deadline: hedge starts the same sentence alongside"
            in [r.getMessage() for r in caplog.records])


# --- what the operator reads at start-up ----------------------------------------------


async def test_start_up_says_who_speaks_who_is_down_and_who_joins_later(caplog):
    class Broken(ToneBackend):
        async def start(self) -> None:
            raise BackendUnavailable("no model here")

    class Crashes(ToneBackend):
        async def start(self) -> None:
            raise RuntimeError("")

    caplog.set_level("INFO", logger="wyoming_verba.backends.chain")
    slow, fast = SlowStart(name="slow"), ToneBackend(name="fast")
    broken, crashes = Broken(name="broken"), Crashes(name="crashes")
    chain = BackendChain([slow, broken, crashes, fast])
    await chain.start(grace=0.05)
    messages = [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert ("INFO", "speaking with: fast (still starting: slow)", False) in messages
    assert ("WARNING", "backend broken is not available: no model here", False) in messages
    assert ("ERROR", "crashes failed to start", True) in messages  # a crash: its traceback
    assert not any(m.startswith("broken failed to start") for _, m, _ in messages)
    assert chain.down == {"broken": "no model here", "crashes": "RuntimeError"}
    await asyncio.sleep(0.6)
    assert caplog.records[-1].getMessage() == "slow is ready: speaking with slow → fast"
    await chain.stop()


async def test_start_without_any_backend_says_so(caplog):
    class Broken(ToneBackend):
        async def start(self) -> None:
            raise BackendUnavailable("gone")

    chain = BackendChain([Broken(name="a")])
    await chain.start(grace=0.0)
    assert chain.live == [] and chain.first_usable() is None
    assert "no backend could start: every request will get an error" in caplog.text


async def test_a_speaker_is_checked_against_the_voice_and_kept():
    first = ToneBackend(name="first", voices_=[Voice("duo", ("en-US",), "", ("alice", "bob"))])
    chain = await chain_of(first)
    assert chain.resolve("duo", "bob").speaker == "bob"
    assert chain.resolve("duo").speaker is None
    with pytest.raises(VoiceNotFound) as refused:
        chain.resolve("duo", "eve")
    assert str(refused.value) == "voice 'duo' has no speaker 'eve'; speakers: alice, bob"
    choice = chain.resolve(None, "bob", language="en-US")
    assert (choice.language, choice.speaker) == ("en-US", "bob")
    assert chain.resolve(None, "bob").speaker == "bob"


async def test_what_the_client_and_the_operator_are_told_when_backends_fail(caplog):
    caplog.set_level("DEBUG", logger="wyoming_verba.backends.chain")
    first, second = two_tones(fail_before_audio=1)
    second.faults.fail_before_audio = 1
    chain = await chain_of(first, second)
    with pytest.raises(AllBackendsFailed) as info:
        await collect(chain, "nobody can say this")
    assert str(info.value) == ("every backend failed: first: first: injected failure; "
                               "second: second: injected failure")
    assert "first failed after 0.00 s of audio: first: injected failure" in [
        r.getMessage() for r in caplog.records]
    empty = await chain_of()
    with pytest.raises(AllBackendsFailed) as info:
        await collect(empty, "hello")
    assert str(info.value) == "no backend is available to speak"


async def test_start_up_names_the_backends_in_order(caplog):
    caplog.set_level("INFO", logger="wyoming_verba.backends.chain")
    chain = await chain_of(*two_tones())
    assert "speaking with: first → second" in [r.getMessage() for r in caplog.records]
    caplog.clear()
    chain = BackendChain([SlowStart(name="s1"), SlowStart(name="s2"), ToneBackend(name="fast")])
    await chain.start(grace=0.05)
    assert "speaking with: fast (still starting: s1, s2)" in [
        r.getMessage() for r in caplog.records]
    await chain.stop()
    caplog.clear()
    await BackendChain([]).start()
    assert [r.getMessage() for r in caplog.records] == [
        "no backend could start: every request will get an error"]


@dataclass
class TaskNoting(ToneBackend):
    """Notes the task its stream runs in, at each step."""

    tasks: set = field(default_factory=set)

    async def synthesize(self, text, voice, speaker, utterance):
        async for chunk in super().synthesize(text, voice, speaker, utterance):
            self.tasks.add(asyncio.current_task())
            yield chunk


async def test_a_backend_with_nobody_to_race_is_read_in_the_callers_own_task():
    """No task per step unless a hedge could start beside it: a lone backend (or one
    without a deadline) is read directly by the reply; with a second backend and a
    deadline, its first audio is raced from a task of its own."""
    for backends, deadline in (([TaskNoting()], 10.0),
                               ([TaskNoting(), TaskNoting(name="other")], None),
                               ([TaskNoting(), TaskNoting(name="other")], 10.0)):
        chain = await chain_of(*backends)
        loop = asyncio.get_running_loop()
        deadline_at = loop.time() + deadline if deadline is not None else None
        async for _ in chain.speak("One two three.", chain.resolve(None), Utterance("r1"),
                                   SentenceOutcome(), deadline_at):
            pass
        raced = len(backends) > 1 and deadline is not None
        assert (backends[0].tasks != {asyncio.current_task()}) == raced


async def test_a_reply_cancelled_while_its_hedge_is_the_last_one_reading_closes_it_cleanly():
    """The owner fails after the hedge started, so the hedge's read (a task of its own)
    goes on in the reply's task; the client leaves then. The hedge's stream is cancelled
    and closed, not closed while its read is still running (RuntimeError: already running)."""
    owner = ToneBackend(name="owner", faults=Faults(first_delay=0.2, fail_before_audio=1))
    hedge = ToneBackend(name="hedge", faults=Faults(first_delay=30.0))
    chain = await chain_of(owner, hedge)
    loop = asyncio.get_running_loop()

    async def speak_it() -> None:
        async for _ in chain.speak("One two three.", chain.resolve(None), Utterance("r1"),
                                   SentenceOutcome(), loop.time() + 0.05):
            pass

    task = asyncio.create_task(speak_it())
    await asyncio.sleep(0.5)  # hedged at 0.05 s, the owner failed at 0.2 s
    assert hedge.attempts and owner.streams_ended == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert hedge.cancelled == 1 and hedge.streams_ended == 1
