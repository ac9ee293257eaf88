"""Home Assistant must never lose a language: it refuses a request whose language is not
among the installed voices it saw at the last `describe` (every 30 s). So the voice list
does not follow a backend's health, every language has one valid BCP-47 spelling, and
Piper's repository voices are offered as wyoming-piper offers them."""

from __future__ import annotations

import re

import pytest

from tests import client
from tests.fakes.edge_service import FakeEdge
from wyoming_verba.languages import bcp47

BCP47 = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-(?:[A-Z]{2}|[0-9]{3}))?$")


def installed_languages(info) -> set[str]:
    return {lang for p in info.tts for v in p.voices if v.installed for lang in v.languages}


@pytest.fixture
async def fake_edge(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY", "WSS_PROXY", "wss_proxy"):
        monkeypatch.delenv(name, raising=False)
    server = await FakeEdge().start()
    server.patch(monkeypatch)
    yield server
    await server.stop()


async def test_languages_stay_while_edge_goes_down_and_comes_back(verba_server, fake_edge):
    srv = await verba_server("--backend", "edge,espeak", "--cooldown", "60")
    before = installed_languages(await client.describe(srv.uri))
    assert "de-DE" in before
    fake_edge.mode = "503"
    for _ in range(3):  # Edge fails: the breaker opens, espeak speaks German meanwhile
        reply = await client.speak(srv.uri, "Guten Morgen.", voice="de-DE-KatjaNeural")
        assert reply.errors == [] and reply.seconds > 0.3
    assert not srv.app.chain.usable(srv.app.chain.live[0])
    assert installed_languages(await client.describe(srv.uri)) == before
    fake_edge.mode = "normal"
    assert installed_languages(await client.describe(srv.uri)) == before


async def test_edge_offline_at_start_up_still_offers_its_languages(verba_server, fake_edge):
    fake_edge.voice_list_mode = "503"
    srv = await verba_server("--backend", "edge,espeak", "--edge-voice-list-timeout", "0.5")
    info = await client.describe(srv.uri)
    assert {"de-DE", "fr-FR", "ja-JP"} <= installed_languages(info)
    reply = await client.speak(srv.uri, "Bonjour.", voice="fr-FR-DeniseNeural")
    assert reply.errors == [] and reply.seconds > 0.3  # a stand-in speaks it


async def test_every_advertised_language_is_one_valid_bcp47_tag(verba_server, fake_edge):
    pytest.importorskip("piper")
    srv = await verba_server("--backend", "edge,piper,espeak", "--no-piper-download")
    info = await client.describe(srv.uri)
    languages = {lang for p in info.tts for v in p.voices for lang in v.languages}
    bad = sorted(lang for lang in languages if not BCP47.match(lang))
    assert bad == []
    assert "en_US" not in languages and "en-US" in languages
    piper_voice = next(v for p in info.tts for v in p.voices if v.name == "en_US-joe-medium")
    assert piper_voice.languages == ["en-US"]  # the same tag as Edge's and espeak's en-US
    espeak_tags = {lang for p in info.tts for v in p.voices if "(espeak)" in (v.description or "")
                   for lang in v.languages}
    assert {"chr-US-Qaaa", "piqd", "py"}.isdisjoint(espeak_tags)


@pytest.mark.parametrize(("tag", "expected"), [
    ("en_US", "en-US"), ("en-us", "en-US"), ("de_DE", "de-DE"), ("en-GB-x-rp", "en-GB"),
    ("fa-latn", "fa-Latn"), ("sr-Latn-rs", "sr-Latn-RS"), ("es-419", "es-419"),
    ("vi-VN-x-central", "vi-VN"), ("chr-US-Qaaa-x-west", "chr-US"), ("yue", "yue"),
    ("py", None), ("piqd", None), ("", None), ("12", None), ("english", None),
])
def test_bcp47(tag, expected):
    assert bcp47(tag) == expected
