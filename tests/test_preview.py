"""`wyoming-verba text` (preview.py): the sentences a backend would be given, one per
line, after cleanup, splitting, the lexicon and normalisation; from the argument or
standard input; through main() and as the installed command's module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from wyoming_verba.__main__ import main
from wyoming_verba.preview import spoken_sentences
from wyoming_verba.settings import load_settings

REPLY = ("**Good news:** the kitchen is at 21.5 °C. Dr. Smith arrives at 2:30 PM.\n"
         "- Call 555-1234\n- Pay $5.50 🙂")


def run_text(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(["text", *argv])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def test_a_normalising_backend(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = run_text(capsys, "--backend", "espeak", REPLY)
    assert code == 0
    assert lines == [
        "Good news: the kitchen is at twenty-one point five degrees Celsius.",
        "Doctor Smith arrives at two thirty P M.",
        "Call five five five, one two three four",
        "Pay five dollars and fifty cents",
    ]
    assert "espeak is given (en-US, normalised)" in err


def test_a_backend_that_reads_the_text_itself(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = run_text(capsys, REPLY, "--backend", "edge")
    assert code == 0
    assert lines == ["Good news: the kitchen is at 21.5 °C.", "Dr. Smith arrives at 2:30 PM.",
                     "Call 555-1234", "Pay $5.50"]
    assert "edge is given (en-US, as written)" in err


def test_language_lexicon_and_server_settings_apply(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lexicon = tmp_path / "lexicon.yaml"
    lexicon.write_text("languages:\n  de:\n    Hue: hju\n")
    text = "Die Hue Lampe ist seit dem 2. Mai an, z. B. um 14:30 Uhr, und sie braucht 9 W."
    code, lines, _ = run_text(capsys, "--language", "de-DE", "--lexicon", str(lexicon),
                              "--backend", "csm", "--first-sentence-chars", "40", text)
    assert code == 0
    assert lines == ["Die hju Lampe ist seit dem zweiten Mai an,",  # the first-sentence cut
                     "zum Beispiel um vierzehn Uhr dreißig, und sie braucht neun Watt."]


def test_ssml(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run_text(capsys, "--ssml", "--backend", "piper",
                              "<speak>It is <emphasis>5 km</emphasis> away.</speak>")
    assert code == 0 and lines == ["It is five kilometers away."]


def test_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "lexicon.yaml"
    bad.write_text("words:\n  Hue:\n")
    code, lines, err = run_text(capsys, "--lexicon", str(bad), "Hue")
    assert code == 2 and lines == []
    assert f"--lexicon '{bad}': line 2: 'Hue' has no replacement" in err
    code, _, err = run_text(capsys, "--backend", "nope", "Hue")
    assert code == 2 and "unknown backend 'nope'" in err


def test_the_same_sentences_the_server_splits() -> None:
    """The command is the server's own pipeline (splitter, lexicon, normalize), not a
    copy: with edge it is exactly the splitter's output."""
    from wyoming_verba.text import split_sentences

    settings = load_settings([], env={})
    assert list(spoken_sentences(settings, REPLY, "edge")) == split_sentences(REPLY)


def test_as_a_command_reading_standard_input(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wyoming_verba", "text", "--backend", "csm", "--language",
         "de"], input="Es kostet 5,50 €. Bis 1.12.2026!\n", capture_output=True, text=True,
        timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Es kostet fünf Euro fünfzig.",
                                          "Bis ersten Dezember zweitausendsechsundzwanzig!"]
