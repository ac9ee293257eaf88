"""Text cleanup and the incremental sentence splitter."""

from __future__ import annotations

import random
import re
import time

import pytest

from wyoming_verba.text import (
    SentenceSplitter,
    clean_sentence,
    clean_text,
    split_sentences,
)

NO_CUT = 10**9  # first_sentence_chars that never cuts
MAX_SENTENCE_CHARS = SentenceSplitter().max_sentence_chars


def stream(pieces: list[str], first: int = NO_CUT, ssml: bool = False) -> list[str]:
    splitter = SentenceSplitter(first, ssml=ssml)
    out: list[str] = []
    for piece in pieces:
        out += splitter.feed(piece)
    return out + splitter.flush()


def chunkings(text: str) -> dict[str, list[str]]:
    rng = random.Random(len(text))
    pieces, i = [], 0
    while i < len(text):
        n = rng.randint(1, 9)
        pieces.append(text[i : i + n])
        i += n
    return {
        "whole": [text],
        "chars": list(text),
        "words": re.split(r"(?<=\s)", text),
        "random": pieces,
    }


# --- splitting ------------------------------------------------------------------------

SPLITS = [
    ("Hello world. How are you? I'm fine!", ["Hello world.", "How are you?", "I'm fine!"]),
    ("Dr. Smith and Mr. Jones arrived.", ["Dr. Smith and Mr. Jones arrived."]),
    ("Use a tool, e.g. a hammer, i.e. this one.", ["Use a tool, e.g. a hammer, i.e. this one."]),
    ("Apples, pears, etc. and more. Next.", ["Apples, pears, etc. and more.", "Next."]),
    ("Apples, pears, etc. Then plums.", ["Apples, pears, etc.", "Then plums."]),
    ("The U.S. Army is big. It is.", ["The U.S. Army is big.", "It is."]),
    ("J. R. R. Tolkien wrote it. Yes.", ["J. R. R. Tolkien wrote it.", "Yes."]),
    ("So did I. Then we left.", ["So did I.", "Then we left."]),
    ("It costs 3.50 dollars. Cheap.", ["It costs 3.50 dollars.", "Cheap."]),
    ("Version 2.0.1 is out. Update.", ["Version 2.0.1 is out.", "Update."]),
    ("We meet at 5 p.m. Then we eat.", ["We meet at 5 p.m.", "Then we eat."]),
    ("Step 3. Open the door.", ["Step 3.", "Open the door."]),
    ("Es ist der 3. Mai. Heute ist schön.", ["Es ist der 3. Mai.", "Heute ist schön."]),
    ("Er kommt, d. h. bald. Ja.", ["Er kommt, d. h. bald.", "Ja."]),
    ("Das ist u. a. gut. Plan b. Dann.", ["Das ist u. a. gut.", "Plan b.", "Dann."]),
    ("Es sind 1,5 Mio. €. Viel.", ["Es sind 1,5 Mio. €.", "Viel."]),
    ("It uses 9.5 W. It is 12 V. Then J. R. R. Tolkien.",
     ["It uses 9.5 W.", "It is 12 V.", "Then J. R. R. Tolkien."]),
    ("Das ist der 2. versuch. Gut.", ["Das ist der 2. versuch.", "Gut."]),
    ("In 2024. We grew.", ["In 2024.", "We grew."]),
    ('He said "Stop!" Then he left.', ["He said Stop!", "Then he left."]),
    ("Wait... what? Really?! Yes.", ["Wait.", "what?", "Really?", "Yes."]),
    ("Well… maybe. (Or not.) Fine.", ["Well…", "maybe.", "Or not.", "Fine."]),
    ("你好。世界！好吗？", ["你好。", "世界！", "好吗？"]),
    ("Größe: 5 m. Übermorgen regnet es.", ["Größe: 5 m.", "Übermorgen regnet es."]),
    ("Line one\nLine two\n\nLine three", ["Line one", "Line two", "Line three"]),
    ("   ", []),
    ("... !!! ???", []),
    ("Hi.\n...\n- \n> ", ["Hi."]),
]


# Whole, these stay one sentence; a feed that ends right after "example." or "Yahoo!"
# emits at once (the documented trade-off for not waiting on a pausing LLM).
FEED_END_TRADE_OFF = [
    ("See example.com for more. Bye.", ["See example.com for more.", "Bye."],
     ["See example.", "com for more.", "Bye."]),
    ("Yahoo!Mail is old.", ["Yahoo!Mail is old."], ["Yahoo!", "Mail is old."]),
]


@pytest.mark.parametrize(("text", "whole", "chars"), FEED_END_TRADE_OFF)
def test_feed_end_trade_off(text: str, whole: list[str], chars: list[str]) -> None:
    assert split_sentences(text, NO_CUT) == whole
    assert stream(re.split(r"(?<=\s)", text)) == whole
    assert stream(list(text)) == chars


@pytest.mark.parametrize(("text", "expected"), SPLITS)
def test_split(text: str, expected: list[str]) -> None:
    assert split_sentences(text, NO_CUT) == expected


@pytest.mark.parametrize(("text", "expected"), SPLITS)
def test_any_chunking_gives_the_same_sentences(text: str, expected: list[str]) -> None:
    for name, pieces in chunkings(text).items():
        assert stream(pieces) == expected, name


# --- markdown, URLs, emoji --------------------------------------------------------

MARKDOWN = [
    ("This is **bold** and *it* and _it_ too.", ["This is bold and it and it too."]),
    ("Run `ha core restart` now.", ["Run ha core restart now."]),
    ("# Weather\nIt is sunny.", ["Weather", "It is sunny."]),
    ("### Heading three ###\nText.", ["Heading three", "Text."]),
    ("- apples\n* pears\n+ plums", ["apples", "pears", "plums"]),
    ("1. First step\n2) Second step\n10. Tenth", ["First step", "Second step", "Tenth"]),
    ("1.5 litres is enough.", ["1.5 litres is enough."]),
    ("12 apples are left.", ["12 apples are left."]),
    ("  - nested item\n    1. deeper", ["nested item", "deeper"]),
    ("Visit [our site](https://x.com/a_b). Done.", ["Visit our site.", "Done."]),
    ("![chart](https://x.com/c.png) Look.", ["Look."]),
    ("Intro:\n```python\nprint('x. y')\nx = 1\n```\nAfter code.", ["Intro:", "After code."]),
    ("~~~\ncode\n~~~\nText.", ["Text."]),
    ("> Quoted text here.\n> > Nested.", ["Quoted text here.", "Nested."]),
    ("| Room | Temp |\n|---|:---:|\n| Kitchen | 21 |", ["Room, Temp", "Kitchen, 21"]),
    ("Above\n---\n***\n___\nBelow", ["Above", "Below"]),
    ("Title\n=====\nBody.", ["Title", "Body."]),
    ("<b>Bold</b> and <i>it</i>.<br>Next", ["Bold and it. Next"]),
    ("Sunny today ☀️🌈! Great 👍🏽.", ["Sunny today!", "Great."]),
    ("Family 👨‍👩‍👧 and flag 🇩🇪 here.", ["Family and flag here."]),
    ("see https://www.example.com/a?b=1", ["see example.com"]),
    ("Go to http://localhost:8123/config. Then save.", ["Go to localhost.", "Then save."]),
    ("Docs at <https://www.home-assistant.io/docs>.", ["Docs at home-assistant.io."]),
    ("Open www.example.org/page now.", ["Open example.org now."]),
    ("The sensor_kitchen_temp is 21 °C.", ["The sensor kitchen temp is 21 °C."]),
    ("#hashtag and a \\*literal\\* star.", ["hashtag and a literal star."]),
    ("On -> off → done.", ["On, off, done."]),
    ("It is -5 degrees.", ["It is -5 degrees."]),
    ("AT&amp;T &gt; others.", ["AT&T > others."]),
    ("Don't 'quote' me.", ["Don't quote me."]),
]


@pytest.mark.parametrize(("text", "expected"), MARKDOWN)
def test_markdown(text: str, expected: list[str]) -> None:
    for name, pieces in chunkings(text).items():
        assert stream(pieces) == expected, name


def test_markdown_across_feed_boundaries() -> None:
    assert stream(["**bo", "ld** text. ", "Next *it", "alic*."]) == [
        "bold text.", "Next italic."
    ]
    assert stream(["Go to [the", " docs](https://ex", "ample.com/x). Now."]) == [
        "Go to the docs.", "Now."
    ]
    assert stream(["Text.\n``", "`py\ncode. here\n`", "``\nEnd."]) == ["Text.", "End."]
    assert stream(["#", "# Head", "ing\nBody."]) == ["Heading", "Body."]
    assert stream(["1", "2", ". Item\n1", "2 items."]) == ["Item", "12 items."]


# --- emitting without waiting for the next word -------------------------------------


EARLY = [
    ("Hello world. ", ["Hello world."]),
    ("Hello world.", ["Hello world."]),  # plain word before "."
    ("Is it on?", ["Is it on?"]),
    ("Stop!", ["Stop!"]),
    ('She said "stop!"', ['She said stop!']),
    ("**Done.**", ["Done."]),
    ("Weather today\n", ["Weather today"]),
    ("你好。", ["你好。"]),
    ("Wait… ", ["Wait…"]),
    ("Okay, I. ", ["Okay, I."]),
]

HELD = [
    ("Ask Dr.", ["Ask Dr."]),  # "Dr. Smith"
    ("Ask Dr. ", ["Ask Dr."]),
    ("It costs 3.", ["It costs 3."]),  # 3.50
    ("Born on the 3. ", ["Born on the 3."]),  # 3. Mai
    ("Fruit, etc. ", ["Fruit, etc."]),  # etc. and more
    ("In the U.S.", ["In the U.S."]),
    ("Letter J.", ["Letter J."]),
    ("See https://x.com/a?", ["See x.com?"]),  # ?b=1
    ("See example.com/page.", ["See example.com/page."]),
    ("Open www.", ["Open www."]),  # www.example.org
    ("Wait…", ["Wait…"]),  # more dots or a bracket may follow
    ("1. ", []),  # a list marker, nothing to say yet
    ("![", []),  # an image, not an exclamation
]


@pytest.mark.parametrize(("text", "expected"), EARLY)
def test_feed_returns_finished_sentence_at_once(text: str, expected: list[str]) -> None:
    splitter = SentenceSplitter(NO_CUT)
    assert splitter.feed(text) == expected
    assert splitter.flush() == []


@pytest.mark.parametrize(("text", "at_flush"), HELD)
def test_feed_holds_what_may_continue(text: str, at_flush: list[str]) -> None:
    splitter = SentenceSplitter(NO_CUT)
    assert splitter.feed(text) == []
    assert splitter.flush() == at_flush


def test_held_sentences_resolve_with_the_next_word() -> None:
    s = SentenceSplitter(NO_CUT)
    assert s.feed("Fruit, etc. ") == []
    assert s.feed("Then") == ["Fruit, etc."]
    s = SentenceSplitter(NO_CUT)
    assert s.feed("It costs 3.") == []
    assert s.feed("50 dollars.") == ["It costs 3.50 dollars."]
    s = SentenceSplitter(NO_CUT)
    assert s.feed("Born on the 3. Ma") == []
    assert s.feed("i in Berlin. ") == ["Born on the 3. Mai in Berlin."]


def test_llm_token_stream() -> None:
    tokens = ["The", " kitchen", " light", " is", " on", ".", " The", " door", " is",
              " locked", "!", " Anything", " else", "?"]
    s = SentenceSplitter()
    emitted = [s.feed(t) for t in tokens]
    assert emitted[5] == ["The kitchen light is on."]
    assert emitted[10] == ["The door is locked!"]
    assert emitted[13] == ["Anything else?"]
    assert sum(emitted, []) + s.flush() == [
        "The kitchen light is on.", "The door is locked!", "Anything else?"
    ]


# --- first-sentence cut ---------------------------------------------------------------

LONG_FIRST = (
    "Good morning, today will be mostly sunny with a light breeze from the west, "
    "temperatures climbing to twenty four degrees in the afternoon, and no rain expected. "
    "Have a nice day."
)


def test_long_first_sentence_is_cut_at_a_clause() -> None:
    sentences = split_sentences(LONG_FIRST, first_sentence_chars=100)
    assert sentences == [
        "Good morning, today will be mostly sunny with a light breeze from the west,",
        "temperatures climbing to twenty four degrees in the afternoon, and no rain expected.",
        "Have a nice day.",
    ]
    # The same text fed word by word: the cut leaves as soon as the limit is passed.
    s = SentenceSplitter(100)
    got: list[tuple[int, str]] = []
    for i, word in enumerate(re.split(r"(?<= )", LONG_FIRST)):
        got += [(i, x) for x in s.feed(word)]
    assert [x for _, x in got] == sentences
    words_to_limit = len(LONG_FIRST[:101].split())
    assert got[0][0] <= words_to_limit  # before the sentence's end arrived


def test_only_the_first_sentence_is_cut() -> None:
    text = "Short one. " + LONG_FIRST
    assert split_sentences(text, 100)[1] == LONG_FIRST.split(". ")[0] + "."
    assert split_sentences(LONG_FIRST, NO_CUT)[0] == LONG_FIRST.split(". ")[0] + "."


def test_cut_needs_twenty_chars_before_the_boundary() -> None:
    text = "Yes, " + "the answer is a long explanation without any clause boundary " * 2 + "end."
    assert split_sentences(text, 50) == [clean_sentence(text)]


def test_cut_waits_for_a_boundary_after_the_limit() -> None:
    text = ("This first sentence runs well past the configured limit without a comma "
            "until here, and then it goes on. Next.")
    s = SentenceSplitter(40)
    assert s.feed(text[:60]) == []
    first = s.feed(text[60:])
    assert first[0].endswith("until here,")
    assert first[1:] + s.flush() == ["and then it goes on.", "Next."]


def test_run_on_text_is_cut() -> None:
    text = "word " * 1000
    sentences = split_sentences(text)
    assert all(len(x) <= MAX_SENTENCE_CHARS + 1 for x in sentences)
    assert " ".join(x.rstrip(",") for x in sentences).split() == text.split()


def test_the_run_on_limit_is_configurable() -> None:
    text = "word " * 100
    sentences = split_sentences(text, max_sentence_chars=60)
    assert len(sentences) > 8 and all(len(x) <= 61 for x in sentences)
    assert " ".join(x.rstrip(",") for x in sentences).split() == text.split()


# --- SSML -------------------------------------------------------------------------

SSML = [
    ("<speak>Hello <emphasis>big</emphasis> world.</speak>", ["Hello big world."]),
    ('<speak>Wait<break time="1s"/>now.</speak>', ["Wait", "now."]),
    ("<speak>Wait<break time='200ms'/>now.</speak>", ["Wait, now."]),
    ('<speak>Wait<break strength="strong"/>now</speak>', ["Wait", "now"]),
    ("<speak><p>One</p><p>Two</p></speak>", ["One", "Two"]),
    ("<speak><s>First</s><s>Second</s></speak>", ["First", "Second"]),
    ('<speak><sub alias="World Wide Web">WWW</sub> rocks.</speak>', ["World Wide Web rocks."]),
    ("<speak>Tom &amp; Jerry &lt;3.</speak>", ["Tom & Jerry <3."]),
    ("<speak>A <!-- not <this> --> B.</speak>", ["A B."]),
    ('<speak><say-as interpret-as="date">2024-01-02</say-as> it is.</speak>',
     ["2024-01-02 it is."]),
    ("<speak>\n  Line\n  continues.\n</speak>", ["Line continues."]),
]


@pytest.mark.parametrize(("text", "expected"), SSML)
def test_ssml(text: str, expected: list[str]) -> None:
    for name, pieces in chunkings(text).items():
        assert stream(pieces, ssml=True) == expected, name


SSML_MORE = [
    # Words inside inline tags join their neighbours; speak/voice separate them.
    ('<speak>Hello<voice name="x">world</voice></speak>', ["Hello world"]),
    ('<speak>Kinder<lang xml:lang="de">garten</lang>, to<prosody rate="slow">mato</prosody>, '
     'wo<emphasis>rd</emphasis>, <say-as interpret-as="characters">A</say-as>B'
     '<phoneme ph="si">C</phoneme>D<mark name="m"/>E.</speak>',
     ["Kindergarten, tomato, word, ABCDE."]),
    ("<speak><paragraph>One</paragraph><sentence>Two</sentence></speak>", ["One", "Two"]),
    # Only a strong break or one of at least half a second ends the sentence.
    ('<speak>Wait<break strength="x-strong"/>now<break/>then<break strength="weak"/>more'
     '<break strength="medium"/>end</speak>', ["Wait", "now, then, more, end"]),
    ('<speak>a<break time="499ms"/>b<break time="500ms"/>c<break time="0.4999s"/>d'
     '<break time="0.5s"/>e<break time="1.2.3s"/>f<break time="soon"/>g</speak>',
     ["a, b", "c, d", "e, f, g"]),
    # Comments: each one skipped exactly, the text between and right after them kept.
    ("<speak>A <!-- one --> B <!-- two --> C.</speak>", ["A B C."]),
    ("<speak>A <!-- one -->Done.</speak>", ["A Done."]),
    # <sub>: the alias instead of the text, every time; without an alias, the text.
    ('<speak><sub alias="World Wide Web">WWW</sub> and <sub alias="Doctor">Dr.</sub> Who.'
     "</speak>", ["World Wide Web and Doctor Who."]),
    ("<speak><sub>WWW</sub> rocks.</speak>", ["WWW rocks."]),
    ("<speak>Line one\r\nLine two.</speak>", ["Line one Line two."]),
]


@pytest.mark.parametrize(("text", "expected"), SSML_MORE)
def test_ssml_tags_breaks_comments_and_aliases(text: str, expected: list[str]) -> None:
    for name, pieces in chunkings(text).items():
        assert stream(pieces, ssml=True) == expected, name


@pytest.mark.parametrize("unfinished", ["<break", "<!-- a note"])
def test_an_unfinished_tag_at_the_end_does_not_swallow_the_next_text(unfinished: str) -> None:
    splitter = SentenceSplitter(NO_CUT, ssml=True)
    assert splitter.feed("Hi " + unfinished) == []
    assert splitter.flush() == ["Hi"]
    assert splitter.feed("there. ") + splitter.flush() == ["there."]


# --- clean_sentence ------------------------------------------------------------------

CLEAN = [
    ("See https://www.tesla.com/modelX.", "See tesla.com."),  # only punctuation is stripped
    ("See [the docs][1] for more.", "See the docs for more."),  # reference-style link
    ("I drive a Tesla Model X", "I drive a Tesla Model X"),  # trailing capital stays
    ("Go to Settings ->.", "Go to Settings."),  # no comma before the final period
    ("first line\nsecond line", "first line second line"),
]


@pytest.mark.parametrize(("text", "expected"), CLEAN)
def test_clean_sentence(text: str, expected: str) -> None:
    assert clean_sentence(text) == expected


# --- clean_text ----------------------------------------------------------------------


def test_clean_text() -> None:
    text = "## Today\n- **Sunny** ☀️\n- High of 24 °C\n\nSee https://www.weather.com/x. Bye!"
    assert clean_text(text) == "Today. Sunny. High of 24 °C. See weather.com. Bye!"
    assert clean_text('<speak>Hi<break time="2s"/>there</speak>', ssml=True) == "Hi. there."
    assert clean_text("") == ""
    assert clean_text("🙂 ... **") == ""


def test_long_first_sentence_is_not_cut_by_clean_text() -> None:
    assert clean_text(LONG_FIRST) == LONG_FIRST


# --- robustness ------------------------------------------------------------------------

LLM_REPLY = (
    "Sure! Here's what I found:\n\n## Living room\n- **Lights:** on (3 of 4)\n"
    "- Temperature: 21.5 °C\n\n## Kitchen\n1. The dishwasher finished at 3 p.m. today.\n"
    "2. The fridge door is closed.\n\n```yaml\nservice: light.turn_off\n```\n"
    "> Tip: say \"turn off the lights\".\n\nSee [docs](https://www.home-assistant.io/x) "
    "or https://example.com/help?q=1. Anything else? 😊"
)


def test_llm_reply_all_chunkings_agree() -> None:
    expected = split_sentences(LLM_REPLY, NO_CUT)
    assert expected == [
        "Sure!",
        "Here's what I found:",
        "Living room",
        "Lights: on 3 of 4",
        "Temperature: 21.5 °C",
        "Kitchen",
        "The dishwasher finished at 3 p.m. today.",
        "The fridge door is closed.",
        "Tip: say turn off the lights.",
        "See docs or example.com.",
        "Anything else?",
    ]
    for name, pieces in chunkings(LLM_REPLY).items():
        assert stream(pieces) == expected, name


def test_never_returns_empty_or_symbol_only_sentences() -> None:
    rng = random.Random(7)
    alphabet = list("ab .!?*_#`-|>\n[]()…。") + ["**", "```", "1. ", "Dr. ", "😀", "http://x.y "]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        for pieces in chunkings(text).values():
            for sentence in stream(pieces, first=30):
                assert sentence.strip() == sentence and any(c.isalnum() for c in sentence)


def test_linear_time() -> None:
    """A guard against quadratic rescans, not a benchmark: 200k characters in 5-character
    pieces take ~0.2 s here; a quadratic splitter takes minutes."""
    text = (LLM_REPLY + "\n") * (200_000 // len(LLM_REPLY) + 1)
    runon = "word " * 40_000
    for sample in (text[:200_000], runon):
        started = time.process_time()
        s = SentenceSplitter()
        count = 0
        for i in range(0, len(sample), 5):
            count += len(s.feed(sample[i : i + 5]))
        count += len(s.flush())
        assert count > 300
        assert time.process_time() - started < 5.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ich wohne im 2. Stock. Komm vorbei.", ["Ich wohne im 2. Stock.", "Komm vorbei."]),
        ("Das ist zum 3. Mal passiert.", ["Das ist zum 3. Mal passiert."]),
        ("Use `light.turn_on` now. Done.", ["Use light.turn on now.", "Done."]),
    ],
)
def test_german_ordinals_and_code_spans_do_not_end_sentences(text, expected):
    assert split_sentences(text) == expected
    splitter = SentenceSplitter()
    pieces = [s for ch in text for s in splitter.feed(ch)] + splitter.flush()
    assert pieces == expected
