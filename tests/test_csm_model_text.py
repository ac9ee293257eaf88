"""What CSM-1b reads (backends/csm/model_text.py): only the punctuation a base model
trained on conversation speaks well; odd marks become the pause they stood for."""

from __future__ import annotations

import pytest

from wyoming_verba.backends.csm.model_text import model_text

CASES = [
    ("The lights are on.", "The lights are on."),
    ("Well... I think so.", "Well, I think so."),
    ("Well… I think so.", "Well, I think so."),
    ("One... two... three...", "One, two, three."),
    ("Well…", "Well."),
    ("Wait — really?!", "Wait, really?"),
    ("Guten Tag – wie geht's?", "Guten Tag, wie geht's?"),
    ("It is on - for now.", "It is on, for now."),
    ("A well-known fact.", "A well-known fact."),
    ("The fact; it holds: yes.", "The fact, it holds, yes."),
    ("Hmm?!?! Okay.", "Hmm? Okay."),
    ("Ok!!! Done", "Ok! Done."),
    ("Done", "Done."),
    ("Hello,", "Hello."),
    ("Hello, , world.", "Hello, world."),
    ("Cats & dogs / birds + fish = pets.", "Cats dogs birds fish pets."),
    ("Café crème, s'il vous plaît", "Café crème, s'il vous plaît."),
    ("¿Qué pasa?", "Qué pasa?"),
    ("He said 'hi'.", "He said 'hi'."),
    ("It's the dogs'", "It's the dogs."),
]


@pytest.mark.parametrize(("sentence", "read"), CASES, ids=[c[0] for c in CASES])
def test_only_the_marks_csm_reads_well(sentence: str, read: str) -> None:
    assert model_text(sentence) == read


@pytest.mark.parametrize("sentence", ["", "   ", "…", "#$%", "?!", " - "])
def test_nothing_speakable_is_empty(sentence: str) -> None:
    assert model_text(sentence) == ""


@pytest.mark.parametrize("sentence", [c[0] for c in CASES])
def test_what_it_makes_it_keeps(sentence: str) -> None:
    """Idempotent, and only letters, digits, spaces, apostrophes, inner hyphens and the
    four marks reach the model; it always ends with one of them."""
    read = model_text(sentence)
    assert model_text(read) == read
    assert read[-1] in ".!?"
    assert all(ch.isalnum() or ch in " ,.!?'’-" for ch in read)
