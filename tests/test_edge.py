"""The Edge backend against a local fake Edge service (real framing, real MP3), through
the unmodified edge-tts client. Nothing here reaches the network."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from xml.sax.saxutils import escape, unescape

import edge_tts.communicate
import edge_tts.constants
import edge_tts.drm
import numpy as np
import pytest

from tests import client
from tests.fakes.edge_service import DEFAULT_VOICES, FakeEdge
from tests.test_mp3 import assert_same_audio, reference_decode
from wyoming_verba.backends.base import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    SynthesisCancelled,
    Utterance,
    Voice,
    VoiceNotFound,
    WordMark,
)
from wyoming_verba.backends.edge import EdgeBackend
from wyoming_verba.backends.edge import backend as edge_module
from wyoming_verba.backends.edge import voices as edge_voices
from wyoming_verba.backends.edge.errors import (
    EdgeForbidden,
    EdgeNoAudio,
    EdgeRateLimited,
    EdgeStreamBroken,
)
from wyoming_verba.pcm import Pcm
from wyoming_verba.settings import Settings, SettingsError

pytestmark = pytest.mark.timeout(30)

TEXT = "Hello there, how are you doing today?"


@pytest.fixture
async def fake(monkeypatch) -> AsyncIterator[FakeEdge]:
    async with FakeEdge() as server:
        server.patch(monkeypatch)
        yield server


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Short timeouts so stall tests take about a second.
    return Settings(
        data_dirs=(tmp_path,), edge_first_audio_timeout=0.5, edge_chunk_timeout=0.5,
        edge_sentence_timeout=1.5, cooldown=0.0,
    )


@pytest.fixture
async def backend(fake: FakeEdge, settings: Settings) -> AsyncIterator[EdgeBackend]:
    b = EdgeBackend(settings)
    await b.start()
    yield b
    await b.stop()


async def speak(
    backend: EdgeBackend, text: str = TEXT, voice: str = "en-US-GuyNeural",
    utterance: Utterance | None = None,
) -> tuple[list[Pcm], list[WordMark]]:
    pcm, marks = [], []
    async for chunk in backend.synthesize(text, Voice(voice, (voice[:5],)), None,
                                          utterance or Utterance("test")):
        (pcm if isinstance(chunk, Pcm) else marks).append(chunk)
    return pcm, marks


async def speak_until_error(backend: EdgeBackend, text: str = TEXT) -> tuple[list[Pcm], Exception]:
    """Speak and collect what came out before the error the test expects."""
    pcm: list[Pcm] = []
    with pytest.raises(BackendError) as info:
        async for chunk in backend.synthesize(text, Voice("en-US-GuyNeural", ("en-US",)),
                                              None, Utterance("test")):
            if isinstance(chunk, Pcm):
                pcm.append(chunk)
    return pcm, info.value


def prewarm(fake: FakeEdge, text: str) -> None:
    """Encode the fake's MP3 for each websocket session of `text` before the test, so
    the fake never spends the client's timeout budget on lameenc."""
    escaped = escape(text)
    for part in edge_tts.communicate.split_text_by_byte_length(escaped, 4096):
        fake.audio_for(unescape(part.decode()))


def joined(pcm: list[Pcm]) -> np.ndarray:
    return np.frombuffer(b"".join(p.audio for p in pcm), dtype="<i2")


# --- streaming ---------------------------------------------------------------------


async def test_streams_pcm_matching_a_one_shot_decode(fake, tmp_path) -> None:
    settings = Settings(data_dirs=(tmp_path,), edge_rate="+10%", edge_volume="-5%",
                        edge_pitch="-20Hz")
    backend = EdgeBackend(settings)
    await backend.start()
    try:
        pcm, marks = await speak(backend)
    finally:
        await backend.stop()
    assert {p.rate for p in pcm} == {24000}
    assert len(pcm) > 1  # streamed block by block, not one buffer
    expected, _ = reference_decode(fake.mp3_sent[0])
    assert_same_audio(joined(pcm), expected)
    request = fake.last_request
    assert (request.voice, request.text) == ("en-US-GuyNeural", TEXT)
    assert (request.rate, request.volume, request.pitch) == ("+10%", "-5%", "-20Hz")
    assert fake.connections == fake.sessions == 1


async def test_word_marks_point_just_after_each_word(backend, fake) -> None:
    _, marks = await speak(backend)
    words = ["Hello", "there", "how", "are", "you", "doing", "today"]
    assert [TEXT[: m.text_end].split()[-1].strip(",?") for m in marks] == words
    for mark, word in zip(marks, words, strict=True):
        assert TEXT[mark.text_end - len(word) : mark.text_end] == word
    ends = [m.audio_end for m in marks]
    assert ends == sorted(ends) and ends[0] > 0


async def test_first_pcm_leaves_before_the_last_block_is_sent(backend, fake) -> None:
    fake.block_bytes = 300
    blocks = -(-len(fake.audio_for(TEXT)) // fake.block_bytes)
    assert blocks >= 4
    fake.pause_after_block(blocks - 1)  # the fake holds its last block until resume()
    pcm: list[Pcm] = []
    async for chunk in backend.synthesize(TEXT, Voice("en-US-GuyNeural", ("en-US",)), None,
                                          Utterance("t")):
        if isinstance(chunk, Pcm):
            if not pcm:
                assert fake.blocks_sent < blocks
                fake.resume()
            pcm.append(chunk)
    assert fake.blocks_sent == blocks
    assert_same_audio(joined(pcm), reference_decode(fake.mp3_sent[0])[0])


async def test_long_text_uses_several_sessions(backend, fake) -> None:
    sentence = "This sentence is here to make the text longer than one session. "
    text = (sentence * 70).strip()
    assert len(text.encode()) > 4096
    fake.word_seconds = 0.05  # keep the audio short
    prewarm(fake, text)
    pcm, marks = await speak(backend, text)
    assert fake.sessions == 2
    assert all(r.voice == "en-US-GuyNeural" for r in fake.requests)
    assert "".join(r.text for r in fake.requests).replace(" ", "") == text.replace(" ", "")
    expected = np.concatenate([reference_decode(m)[0] for m in fake.mp3_sent])
    assert_same_audio(joined(pcm), expected)
    # word marks continue into the second session's part of the text
    first_session_chars = len(fake.requests[0].text)
    assert marks[-1].text_end == len(text) - 1  # just after the last word, before "."
    assert any(m.text_end > first_session_chars for m in marks)


# --- failures ------------------------------------------------------------------------


async def test_403_with_clock_skew_is_corrected_by_edge_tts(backend, fake) -> None:
    fake.clock_skew = 3600.0  # the fake's clock is an hour ahead: first token is wrong
    pcm, _ = await speak(backend)
    assert joined(pcm).size > 0
    assert fake.connections == 2 and fake.sessions == 1
    assert abs(edge_tts.drm.DRM.clock_skew_seconds - 3600.0) < 5


async def test_403_twice_is_not_retried_and_not_transient(backend, fake) -> None:
    fake.mode = "forbidden"
    pcm, error = await speak_until_error(backend)
    assert isinstance(error, EdgeForbidden) and not error.transient
    assert "upgrade edge-tts" in str(error)
    assert fake.connections == 2  # edge-tts's own retry only
    assert pcm == []


@pytest.mark.parametrize(("mode", "error_type"),
                         [("429", EdgeRateLimited), ("503", BackendUnavailable)])
async def test_rate_limit_and_service_errors_retry_once(backend, fake, mode, error_type) -> None:
    fake.mode = mode
    _, error = await speak_until_error(backend)
    assert isinstance(error, error_type) and error.transient
    assert error.backend == "edge"
    assert fake.connections == 2
    # one failed sentence does not unlist the voices: cooling down is the chain's call
    assert all(v.installed for v in backend.voices())


@pytest.mark.parametrize("mode", ["429", "503", "no_audio", "stall_before_audio"])
async def test_one_transient_failure_then_success(backend, fake, mode) -> None:
    fake.queue(mode)
    pcm, _ = await speak(backend)
    assert fake.connections == 2
    assert_same_audio(joined(pcm), reference_decode(fake.mp3_sent[-1])[0])


async def test_no_audio_twice(backend, fake) -> None:
    fake.mode = "no_audio"
    pcm, error = await speak_until_error(backend)
    assert isinstance(error, EdgeNoAudio)
    assert len(fake.requests) == 2 and pcm == []


async def test_stall_before_first_audio_gives_up_within_the_sentence_budget(
    fake, tmp_path
) -> None:
    # Two attempts of 1 s would take 2 s; the 1.5 s sentence budget cuts the second.
    settings = Settings(data_dirs=(tmp_path,), edge_first_audio_timeout=1.0,
                        edge_sentence_timeout=1.5)
    backend = EdgeBackend(settings)
    await backend.start()
    fake.mode = "stall_before_audio"
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        pcm, error = await speak_until_error(backend)
    finally:
        await backend.stop()
    elapsed = loop.time() - started
    assert isinstance(error, BackendTimeout) and error.transient
    assert fake.sessions == 2 and pcm == []
    assert 1.0 <= elapsed < 1.5 + 1.0  # the budget, with a generous margin


async def test_stall_after_first_audio_is_a_timeout_without_retry(backend, fake) -> None:
    fake.mode = "stall_after_audio"
    fake.blocks_before_fault = 2
    pcm, error = await speak_until_error(backend)
    assert isinstance(error, BackendTimeout)
    assert "next audio block" in str(error)
    assert fake.connections == 1  # audio of this sentence was sent: no retry
    assert joined(pcm).size > 0


@pytest.mark.parametrize("mode", ["close_mid_stream", "drop_mid_stream"])
async def test_connection_lost_mid_stream_is_an_error(backend, fake, mode) -> None:
    fake.mode = mode
    fake.blocks_before_fault = 2
    pcm, error = await speak_until_error(backend)
    assert isinstance(error, EdgeStreamBroken) and error.transient
    assert fake.connections == 1
    full = reference_decode(fake.audio_for(TEXT))[0]
    assert 0 < joined(pcm).size < full.size  # what came out is a prefix, then the error


async def test_cut_first_session_is_caught_before_the_second_sessions_audio(
    backend, fake
) -> None:
    text = ("Another sentence that fills up the text beyond one websocket session. " * 60)
    fake.word_seconds = 0.05
    prewarm(fake, text.strip())
    fake.queue("close_mid_stream", "normal")
    fake.blocks_before_fault = 2
    pcm, error = await speak_until_error(backend, text.strip())
    assert isinstance(error, EdgeStreamBroken)
    assert fake.sessions == 2  # edge-tts went on to the second part...
    first_part = reference_decode(fake.mp3_sent[0])[0]
    assert joined(pcm).size <= first_part.size  # ...but none of its audio was passed on


async def test_unreachable_edge_is_unavailable(settings, monkeypatch) -> None:
    server = await FakeEdge().start()
    server.patch(monkeypatch)
    await server.stop()  # nothing listens on that port any more
    backend = EdgeBackend(settings)
    await backend.start()  # offline start-up must not raise
    try:
        _, error = await speak_until_error(backend)
        assert isinstance(error, BackendUnavailable) and error.transient
        assert not backend.available()  # from the start-up probe: the chain passes it by
        assert all(v.installed for v in backend.voices())  # a stand-in speaks them
    finally:
        await backend.stop()


async def test_cancel_stops_a_stalled_request_promptly(fake, tmp_path) -> None:
    backend = EdgeBackend(Settings(data_dirs=(tmp_path,), edge_first_audio_timeout=20.0,
                                   edge_sentence_timeout=20.0))
    await backend.start()
    fake.mode = "stall_before_audio"
    utterance = Utterance("c")
    asyncio.get_running_loop().call_later(0.2, utterance.cancel.cancel)
    try:
        with pytest.raises(SynthesisCancelled):
            await asyncio.wait_for(speak(backend, utterance=utterance), 5.0)
    finally:
        await backend.stop()
    await asyncio.sleep(0.1)
    assert fake.sessions == 1 and not fake._sockets  # the websocket was closed


async def test_consumer_leaving_early_closes_the_websocket(backend, fake) -> None:
    fake.pace = 0.02
    stream = backend.synthesize(TEXT, Voice("en-US-GuyNeural", ("en-US",)), None,
                                Utterance("x"))
    async for chunk in stream:
        if isinstance(chunk, Pcm):
            break
    await stream.aclose()
    await asyncio.sleep(0.2)
    assert not fake._sockets


async def test_concurrent_sentences(backend, fake) -> None:
    fake.pace = 0.005
    texts = [f"Sentence number {i} is spoken now." for i in range(4)]
    results = await asyncio.gather(*(speak(backend, t) for t in texts))
    for text, (pcm, _) in zip(texts, results, strict=True):
        assert_same_audio(joined(pcm), reference_decode(fake.audio_for(text))[0])


@pytest.mark.parametrize("variable", ["WS_PROXY", "HTTP_PROXY", "http_proxy"])
async def test_proxy_from_environment_is_used(backend, fake, monkeypatch, variable) -> None:
    # Edge's host does not resolve; only the proxy (the fake itself) can get there.
    # (HTTP_PROXY for ws:// mirrors HTTPS_PROXY for the real wss:// URL.)
    monkeypatch.setattr(edge_tts.communicate, "WSS_URL",
                        "ws://edge.invalid/edge/v1?TrustedClientToken=fake")
    monkeypatch.setenv(variable, f"http://{fake.base_url}")
    pcm, _ = await speak(backend)
    assert joined(pcm).size > 0
    assert fake.hosts == ["edge.invalid"]


def test_env_proxy_for_the_real_edge_url(monkeypatch) -> None:
    for name in ("http_proxy", "https_proxy", "ws_proxy", "wss_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    url = edge_tts.constants.WSS_URL
    assert edge_module.env_proxy(url) is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.lan:3128")
    assert edge_module.env_proxy(url) == "http://proxy.lan:3128"
    monkeypatch.setenv("WSS_PROXY", "http://wss-proxy.lan:8080")
    assert edge_module.env_proxy(url) == "http://wss-proxy.lan:8080"
    monkeypatch.setenv("NO_PROXY", "bing.com")
    assert edge_module.env_proxy(url) is None


# --- voices --------------------------------------------------------------------------


async def test_unknown_voice_is_refused_without_a_request(backend, fake) -> None:
    for name in ("en-US-NobodyNeural", "en_US-joe-medium", "de-DE-katja"):
        with pytest.raises(VoiceNotFound) as info:
            await speak(backend, voice=name)
        assert not info.value.transient
    assert fake.connections == 0
    assert backend.find_voice("en-US-NobodyNeural") is None


async def test_unknown_voice_with_only_the_builtin_list(fake, settings) -> None:
    fake.voice_list_mode = "503"
    backend = EdgeBackend(settings)
    await backend.start()
    try:
        with pytest.raises(VoiceNotFound):
            await speak(backend, voice="en-US-NobodyNeural")
        assert len(fake.requests) == 2  # Edge answered with no audio, twice
    finally:
        await backend.stop()


async def test_voice_list_from_edge_is_listed_and_cached(backend, fake, settings) -> None:
    voices = backend.voices()
    assert [v.name for v in voices][0] == "en-US-GuyNeural"  # the default first
    assert {v.name for v in voices} == {v["ShortName"] for v in DEFAULT_VOICES}
    assert all(v.installed for v in voices)
    katja = backend.find_voice("de-DE-KatjaNeural")
    assert katja is not None and katja.languages == ("de-DE",)
    assert "German" in katja.description
    assert backend.find_voice(language="fr-FR").name == "fr-FR-DeniseNeural"
    cache = json.loads((settings.data_dir / edge_voices.CACHE_FILE).read_text())
    assert {v["ShortName"] for v in cache["voices"]} == {v["ShortName"] for v in DEFAULT_VOICES}


async def test_offline_start_uses_the_cache_and_keeps_the_voices_installed(
    fake, settings
) -> None:
    first = EdgeBackend(settings)
    await first.start()
    await first.stop()
    fake.voice_list = [*DEFAULT_VOICES[:2]]  # would differ if fetched again
    fake.voice_list_mode = "503"
    second = EdgeBackend(settings)
    await second.start()
    try:
        names = {v.name for v in second.voices()}
        assert names == {v["ShortName"] for v in DEFAULT_VOICES}
        assert all(v.installed for v in second.voices()) and not second.available()
        # a sentence that works proves Edge usable again
        await speak(second)
        assert second.available()
    finally:
        await second.stop()


async def test_offline_first_start_uses_builtin_voices(fake, settings, monkeypatch) -> None:
    fake.voice_list_mode = "stall"
    backend = EdgeBackend(replace(settings, voice="de-AT-IngridNeural",
                                  edge_voice_list_timeout=0.3))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await backend.start()
    try:
        assert loop.time() - started < 2.0  # never holds the server's start-up
        names = [v.name for v in backend.voices()]
        assert names[0] == "en-US-GuyNeural"
        assert "de-DE-KatjaNeural" in names and "ja-JP-NanamiNeural" in names
        assert "de-AT-IngridNeural" in names  # TTS_VOICE is always speakable
        # Installed all the same (a stand-in speaks them), but the chain passes Edge by.
        assert all(v.installed for v in backend.voices()) and not backend.available()
    finally:
        await backend.stop()


async def test_background_probe_notices_edge_is_back(fake, settings, monkeypatch) -> None:
    monkeypatch.setattr(edge_module, "REPROBE_MIN_INTERVAL", 0.05)
    fake.voice_list_mode = "503"
    backend = EdgeBackend(settings)
    await backend.start()
    try:
        assert not backend.available()
        fake.voice_list_mode = "normal"
        for _ in range(100):
            if backend.available():
                break
            await asyncio.sleep(0.02)
        assert backend.available()
        assert fake.voice_list_requests >= 2
    finally:
        await backend.stop()


async def test_probe_goes_on_after_a_sentence_works_until_the_list_is_online(
    fake, settings, monkeypatch
) -> None:
    monkeypatch.setattr(edge_module, "REPROBE_MIN_INTERVAL", 0.05)
    fake.voice_list_mode = "503"
    backend = EdgeBackend(settings)
    await backend.start()  # no cache: the built-in list
    try:
        builtin = {v.name for v in backend.voices()}
        assert builtin != {v["ShortName"] for v in DEFAULT_VOICES}
        await speak(backend)  # a sentence gets through: Edge is usable...
        assert backend.available()
        seen = fake.voice_list_requests
        for _ in range(100):  # ...and the probe fails once more after that
            if fake.voice_list_requests > seen:
                break
            await asyncio.sleep(0.02)
        assert fake.voice_list_requests > seen
        fake.voice_list_mode = "normal"  # the list service is back: its list is picked up
        for _ in range(100):
            if {v.name for v in backend.voices()} != builtin:
                break
            await asyncio.sleep(0.02)
        assert {v.name for v in backend.voices()} == {v["ShortName"] for v in DEFAULT_VOICES}
        assert all(v.installed for v in backend.voices())
        assert backend._reprobe is not None
        await asyncio.wait_for(backend._reprobe, 5)  # and the probing stops
    finally:
        await backend.stop()


async def test_start_fails_clearly_when_edge_refuses_the_token(fake, settings) -> None:
    fake.voice_list_mode = "forbidden"
    with pytest.raises(BackendUnavailable, match="403"):
        await EdgeBackend(settings).start()


async def test_start_rejects_a_voice_edge_does_not_have(fake, settings) -> None:
    with pytest.raises(BackendUnavailable, match="en-US-NoSuchNeural"):
        await EdgeBackend(replace(settings, edge_voice="en-US-NoSuchNeural")).start()


@pytest.mark.parametrize(("field", "value"), [("edge_rate", "10%"), ("edge_volume", "+5"),
                                              ("edge_pitch", "+10%")])
def test_malformed_options_are_refused_by_the_settings(settings, field, value) -> None:
    flag = "--" + field.replace("_", "-")
    with pytest.raises(SettingsError, match=f"{flag} '{re.escape(value)}'"):
        replace(settings, **{field: value})


async def test_a_malformed_voice_is_refused_at_start(fake, settings) -> None:
    with pytest.raises(BackendUnavailable, match="--edge-voice 'Guy' is malformed"):
        await EdgeBackend(replace(settings, edge_voice="Guy")).start()
    assert fake.voice_list_requests == 0


# --- through the Wyoming server ---------------------------------------------------------


async def test_end_to_end_through_the_wyoming_server(fake, verba_server) -> None:
    # Edge's own audio, nothing added: --output-rate auto is its own 24 kHz.
    srv = await verba_server("--backend", "edge", "--sentence-pause", "0")
    assert srv.app.output_format.rate == 24000
    info = await client.describe(srv.uri)
    listed = {v.name: v for program in info.tts for v in program.voices}
    assert listed["en-US-GuyNeural"].installed
    assert listed["de-DE-KatjaNeural"].languages == ["de-DE"]

    reply = await client.speak(srv.uri, "Hello there. How are you today?",
                                voice="de-DE-KatjaNeural")
    assert reply.errors == []
    assert reply.rate == 24000 and reply.chunk_formats == {(24000, 2, 1)}
    assert [r.voice for r in fake.requests] == ["de-DE-KatjaNeural"] * len(fake.requests)
    assert " ".join(r.text for r in fake.requests) == "Hello there. How are you today?"
    expected = np.concatenate([reference_decode(m)[0] for m in fake.mp3_sent])
    # Each sentence's MP3 starts with the encoder's silence, which is trimmed.
    assert -0.15 < reply.seconds - expected.size / 24000 < 0.01

    before = len(fake.requests)
    streamed = await client.speak_streaming(srv.uri, ["Good morning ", "to you. ", "Bye now."])
    assert streamed.errors == [] and streamed.seconds > 0.5
    assert " ".join(r.text for r in fake.requests[before:]) == "Good morning to you. Bye now."


async def test_end_to_end_error_event_when_edge_is_down(fake, verba_server) -> None:
    srv = await verba_server("--backend", "edge")
    fake.mode = "503"
    reply = await client.speak(srv.uri, "Hello there.")
    assert reply.errors and reply.audio == b""
    assert "503" in reply.errors[0].text
