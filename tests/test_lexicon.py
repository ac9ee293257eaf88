"""The pronunciation lexicon (text/lexicon.py, --lexicon): its format and case rule,
per-language entries, errors that name the line, reloading when the file changes (the
last good lexicon staying in use on a bad edit), and its place in a real server: before
normalisation, for every sentence of a reply."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from tests.client import speak, speak_streaming
from tests.fakes.tone_backend import ToneBackend
from wyoming_verba.__main__ import main
from wyoming_verba.settings import SettingsError, load_settings
from wyoming_verba.text.lexicon import Lexicon, LexiconError, parse_lexicon

YAML = """\
# a comment
words:
  Hue: hyoo
  nginx: engine x
  Home Assistant: home assis tant
  US: you ess
  R2D2: artoo detoo
  C++: see plus plus
languages:
  de:
    Hue: hju
    nginx: engin ix
  de-AT:
    Hue: hüa
  en_GB:
    tomato: tomahto
"""


def lexicon_file(tmp_path: Path, text: str = YAML, name: str = "lexicon.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rewrite(path: Path, text: str) -> None:
    """Change the file so that its stamp changes even within one mtime tick."""
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 10**9, before + 10**9))


# --- format and matching -------------------------------------------------------------


def test_yaml_and_json_give_the_same_lexicon(tmp_path: Path) -> None:
    entries = parse_lexicon(YAML)
    assert entries.words["Hue"] == "hyoo" and entries.languages["de-at"] == {"Hue": "hüa"}
    assert set(entries.languages) == {"de", "de-at", "en-gb"}
    as_json = json.dumps({"words": entries.words, "languages": {
        "de": entries.languages["de"], "de-AT": {"Hue": "hüa"}, "en_GB": {"tomato": "tomahto"}}},
        indent="\t")  # tab-indented JSON is common and YAML forbids tabs
    assert parse_lexicon(as_json) == entries


CASES = [
    # (text, language, expected)
    ("The Hue lights are on.", "en-US", "The hyoo lights are on."),
    ("HUE and hue stay.", "en-US", "HUE and hue stay."),  # "Hue" has a capital: exact only
    ("Nginx, NGINX and nginx.", "en-US", "engine x, engine x and engine x."),  # lower: any
    ("Tell us about the US.", "en-US", "Tell us about the you ess."),
    ("Hues, Huey and Hue's colour.", "en-US", "Hues, Huey and hyoo's colour."),  # whole words
    ("Ask Home   Assistant now.", "en-US", "Ask home assis tant now."),  # any spacing
    ("Ask Home Assistants.", "en-US", "Ask Home Assistants."),
    ("I like C++ a lot.", "en-US", "I like see plus plus a lot."),
    ("Die Hue Lampe.", "de-DE", "Die hju Lampe."),  # the language's own entry wins
    ("Die Hue Lampe.", "de-AT", "Die hüa Lampe."),  # the most specific tag wins
    ("Die Hue Lampe.", "de", "Die hju Lampe."),
    ("NGINX läuft.", "de-CH", "engin ix läuft."),
    ("A tomato, US.", "en-GB", "A tomahto, you ess."),  # its own entries and `words`
    ("A tomato.", "en-US", "A tomato."),  # en-GB's entries are not en-US's
    ("The Hue is on.", "", "The hyoo is on."),  # no language: `words` only
]


@pytest.mark.parametrize(("text", "language", "expected"), CASES)
def test_matching(tmp_path: Path, text: str, language: str, expected: str) -> None:
    assert Lexicon(lexicon_file(tmp_path)).apply(text, language) == expected


def test_exact_case_wins_over_any_case_and_longest_phrase_wins(tmp_path: Path) -> None:
    path = lexicon_file(tmp_path, "words:\n  hue: any\n  Hue: exact\n  hue go: phrase\n")
    lexicon = Lexicon(path)
    assert lexicon.apply("Hue, HUE, hue go, Hue Go.", "en") == "exact, any, phrase, phrase."


def test_keys_are_text_whatever_yaml_would_make_of_them(tmp_path: Path) -> None:
    path = lexicon_file(tmp_path, "words:\n  no: nope\n  1984: nineteen eighty-four\n"
                                  "  'on': upon\n")
    assert Lexicon(path).apply("No, on 1984.", "en") == "nope, upon nineteen eighty-four."


def test_without_a_file_nothing_changes() -> None:
    assert Lexicon(None).apply("The Hue lights.", "en") == "The Hue lights."


def test_an_empty_file_is_an_empty_lexicon(tmp_path: Path) -> None:
    assert len(Lexicon(lexicon_file(tmp_path, "# nothing yet\n")).entries) == 0


# --- errors --------------------------------------------------------------------------

BAD = [
    ("words:\n  Hue: hyoo\n  Siobhan:\n", 3, "'Siobhan' has no replacement"),
    ("words:\n  Hue: hyoo\n  Hue: hju\n", 3, "'Hue' is listed twice (first on line 2)"),
    ("words:\n  Hue: [hyoo, hju]\n", 2, "the replacement must be text"),
    ("word:\n  Hue: hyoo\n", 1, "unknown section 'word'"),
    ("words:\n  Hue: hyoo\nlanguages:\n  german!:\n    Hue: hju\n", 4,
     "'german!' is not a language tag"),
    ("words:\n  Hue: hyoo\n   nginx: engine x\n", 3, "not valid YAML or JSON"),
    ('{"words": {"Hue": "hyoo",\n "nginx" "engine x"}}', 2, "not valid YAML or JSON"),
    ("- Hue\n- hyoo\n", 1, "expected a mapping with `words:`"),
    ("words: Hue\n", 1, "expected entries such as `Hue: hyoo`"),
    ("words:\n  '?!': what\n", 2, "an entry needs a letter or a digit"),
    ("languages:\n  de: hju\n", 2, "expected entries such as `Hue: hyoo`"),
]


@pytest.mark.parametrize(("text", "line", "problem"), BAD)
def test_bad_files_name_the_line(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = lexicon_file(tmp_path, text)
    with pytest.raises(LexiconError) as caught:
        Lexicon(path)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}, line {line}: ")
    assert problem in str(caught.value)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(LexiconError, match="cannot read it: No such file"):
        Lexicon(tmp_path / "missing.yaml")
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("words:\n  Müller: miller\n".encode("latin-1"))
    with pytest.raises(LexiconError, match="not UTF-8"):
        Lexicon(latin1)


def test_a_bad_lexicon_stops_the_start_with_exit_2(tmp_path: Path, capsys) -> None:
    path = lexicon_file(tmp_path, "words:\n  Hue: hyoo\n  Siobhan:\n")
    with pytest.raises(SettingsError, match=r"--lexicon '.*': line 3: 'Siobhan' has no"):
        load_settings(["--lexicon", str(path)], env={})
    assert main(["--uri", "tcp://127.0.0.1:0", "--lexicon", str(path)]) == 2
    assert (f"wyoming-verba: --lexicon '{path}': line 3: 'Siobhan' has no replacement"
            in capsys.readouterr().err)
    with pytest.raises(SettingsError, match="No such file"):
        load_settings([], env={"VERBA_LEXICON": str(tmp_path / "missing.yaml")})


# --- reloading -----------------------------------------------------------------------


def test_changes_are_picked_up_at_most_once_per_interval(tmp_path: Path) -> None:
    path = lexicon_file(tmp_path, "words:\n  Hue: hyoo\n")
    clock = Clock()
    lexicon = Lexicon(path, clock=clock)
    rewrite(path, "words:\n  Hue: hew\n")
    clock.now += 0.5
    assert lexicon.apply("Hue.", "en") == "hyoo."  # not looked at yet
    clock.now += 0.5
    assert lexicon.apply("Hue.", "en") == "hew."
    rewrite(path, "words:\n  Hue: hyoo\nlanguages:\n  de:\n    Hue: hju\n")
    clock.now += 1.0
    assert lexicon.apply("Hue.", "de") == "hju."  # per-language replacers rebuilt too


def test_a_bad_edit_keeps_the_last_good_lexicon_and_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = lexicon_file(tmp_path, "words:\n  Hue: hyoo\n")
    clock = Clock()
    lexicon = Lexicon(path, clock=clock)
    rewrite(path, "words:\n  Hue: hyoo\n  Siobhan:\n")
    with caplog.at_level(logging.ERROR, logger="wyoming_verba.text.lexicon"):
        for _ in range(3):
            clock.now += 1.0
            assert lexicon.apply("Hue.", "en") == "hyoo."
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [f"lexicon not reloaded: {path}, line 3: 'Siobhan' has no replacement; "
                      "still using the last good one (1 entries)"]
    rewrite(path, "words:\n  Hue: hyoo\n  Siobhan: shiv awn\n")  # fixed: taken at once
    clock.now += 1.0
    assert lexicon.apply("Hue and Siobhan.", "en") == "hyoo and shiv awn."


def test_a_deleted_file_keeps_the_lexicon_until_it_is_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = lexicon_file(tmp_path, "words:\n  Hue: hyoo\n")
    clock = Clock()
    lexicon = Lexicon(path, clock=clock)
    path.unlink()
    clock.now += 1.0
    with caplog.at_level(logging.ERROR, logger="wyoming_verba.text.lexicon"):
        assert lexicon.apply("Hue.", "en") == "hyoo."
    assert "cannot read it" in caplog.text
    lexicon_file(tmp_path, "words:\n  Hue: hew\n")
    clock.now += 1.0
    assert lexicon.apply("Hue.", "en") == "hew."


# --- in a real server ----------------------------------------------------------------


async def test_every_sentence_of_a_reply_goes_through_the_lexicon(
    verba_server, tmp_path: Path
) -> None:
    """Before normalisation (R2D2 is a name, not "R two D two"), in the voice's language,
    and reloaded while the server runs."""
    path = lexicon_file(tmp_path)
    speaker = ToneBackend(name="csm-like")
    speaker.normalizes_text = True
    server = await verba_server("--lexicon", str(path), backends=[speaker])
    reply = await speak_streaming(server.uri,
                                  ["The Hue co", "sts $5.", "50. R2D2 ", "runs nginx."])
    assert not reply.errors
    assert speaker.attempts == ["The hyoo costs five dollars and fifty cents.",
                                "artoo detoo runs engine x."]
    speaker.attempts.clear()
    await speak(server.uri, "Die Hue kostet 5,50 €.", voice="tone-de")
    assert speaker.attempts == ["Die hju kostet fünf Euro fünfzig."]

    server.app.lexicon.interval = 0.0  # look at the file on every use
    rewrite(path, "words:\n  Hue: hew\n")
    speaker.attempts.clear()
    await speak(server.uri, "The Hue.")
    assert speaker.attempts == ["The hew."]


async def test_without_a_voice_the_lexicon_uses_the_server_language(
    verba_server, tmp_path: Path
) -> None:
    speaker = ToneBackend(name="tone")
    server = await verba_server("--lexicon", str(lexicon_file(tmp_path)), "--language",
                                "de-AT", backends=[speaker])
    await speak(server.uri, "Die Hue Lampe.")
    assert speaker.attempts == ["Die hüa Lampe."]
