"""Text cleanup and the incremental sentence splitter."""

from __future__ import annotations

import random
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wyoming_verba.text import (
    SentenceSplitter,
    clean_sentence,
    clean_text,
    cleanup,
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
    ("<speak><paragraph>One</paragraph>Two</speak>", ["One", "Two"]),
    ("<speak>One<sentence>Two</sentence></speak>", ["One", "Two"]),
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


# Pieces of the markup the cleaning reads, and of what it leaves alone.
_PIECES = ["[", "]", "(", ")", "![a](b)", "[x](http://a.b/c)", "[t][1]", "<b>", "</i>",
           "<!-- c -->", "<https://x.org/p>", "`", "``code``", "&amp;", "&lt;", "&", "*",
           "**", "_", "__init__", "snake_case", "~~", "==", "|", "#", "\\", "^", "{", "}",
           '"', "“", "”", "„", "«", "»", "‹", "›", "'", "‘", "’", "‚", "->", "=>", "<-",
           "\u2192", "\u27f6", "\u2b05", "\u2b31", "\u2600", "\u231a", "\ufe0f",
           "\u200d", "\u20e3", "\U0001f600", "\U0001f1e9", "\U000e0067", "www.", "WWW.x.de",
           "https://", "ftp://h/", ":", "-", "–", "—", "/", ",", ";", ".", "!", "?", "…", "。",
           " ", "  ", "\t", "\n", "\u00a0", "\u3000", "word", "Word", "it's", "3", "21.5",
           "%", "°C", "$5", "@", "+", "ä", "日本"]


def _cleaned_by_every_step(text: str) -> str:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cleanup, "_MARKUP_CHARS", re.compile(""))  # no step skipped
        return clean_sentence(text)


@pytest.mark.parametrize("piece", _PIECES)
def test_skipping_the_markup_steps_changes_nothing(piece: str) -> None:
    """Text without any character the markup steps react to skips them: the result is
    what running every step gives, for each piece alone among plain words."""
    for text in (piece, f"Hi {piece} there.", f"Hi{piece}there", f"{piece}Yes"):
        assert clean_sentence(text) == _cleaned_by_every_step(text), text


@given(st.lists(st.sampled_from(_PIECES), max_size=12).map("".join))
@settings(max_examples=300, deadline=None)
def test_skipping_the_markup_steps_changes_nothing_in_any_mix(text: str) -> None:
    assert clean_sentence(text) == _cleaned_by_every_step(text)


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


# --- boundaries a user hears (each case once broke a mutant the tests above missed) -----

MORE_SPLITS = [
    ("He has a Ph.D. in physics. Yes.", ["He has a Ph.D. in physics.", "Yes."]),
    ("Follow us on x.com. Then rest.", ["Follow us on x.com.", "Then rest."]),
    ("Visit example.com. Then rest.", ["Visit example.com.", "Then rest."]),
    ("We need plan B! Then we go.", ["We need plan B!", "Then we go."]),
    ("Apples, pears, etc.. and more.", ["Apples, pears, etc.", "and more."]),
    ("Wir wohnen im 12. Stock. Gut.", ["Wir wohnen im 12. Stock.", "Gut."]),
    ("Wir zählen bis 100. Dann suchen wir.", ["Wir zählen bis 100.", "Dann suchen wir."]),
    ("I need size XL. Then I pay.", ["I need size XL.", "Then I pay."]),
    ("你好。Dr. Smith ist da.", ["你好。", "Dr. Smith ist da."]),
    ("按`键。Next sentence. Last one.", ["按 键。", "Next sentence.", "Last one."]),
    ("Done. Press ` to open the console.", ["Done.", "Press to open the console."]),
    ("d. h. es regnet. Gut.", ["d. h. es regnet.", "Gut."]),
    ("d. h. es regnet", ["d. h. es regnet"]),
    ("Hello there。Dr. Smith is here.", ["Hello there。", "Dr. Smith is here."]),
    ("Step 3. Open\nStep 4. Close", ["Step 3.", "Open", "Step 4.", "Close"]),
    ("Steps:\n2.", ["Steps:"]),  # an empty list item at the end says nothing
    (" " * 100 + "Deep text.", ["Deep text."]),  # deep indentation loses no words
]


@pytest.mark.parametrize(("text", "expected"), MORE_SPLITS)
def test_more_boundaries_whole_and_word_by_word(text: str, expected: list[str]) -> None:
    assert split_sentences(text, NO_CUT) == expected
    assert stream(re.split(r"(?<=\s)", text)) == expected


def test_a_spaced_abbreviation_at_the_start_of_a_line_character_by_character() -> None:
    assert stream(list("d. h. es regnet. Gut.")) == ["d. h. es regnet.", "Gut."]


@pytest.mark.parametrize("text", ["Sure, I won't.", "It is well-known.", "That is **great**."])
def test_a_plain_last_word_is_spoken_at_once(text: str) -> None:
    splitter = SentenceSplitter(NO_CUT)
    assert splitter.feed(text) == [clean_sentence(text)]


def test_a_capital_after_etc_is_enough_to_speak_at_once() -> None:
    splitter = SentenceSplitter(NO_CUT)
    assert splitter.feed("Apples, pears, etc. T") == ["Apples, pears, etc."]


def test_code_spans_do_not_hold_the_sentences_after_them() -> None:
    splitter = SentenceSplitter(NO_CUT)
    assert splitter.feed("Use `light.turn_on` now. Done. ") == ["Use light.turn on now.", "Done."]


def test_a_double_space_between_tokens_keeps_a_spaced_abbreviation() -> None:
    assert stream(["Er kommt, d. ", " h. bald."]) == ["Er kommt, d. h. bald."]


def test_a_splitter_starts_clean_after_flush() -> None:
    splitter = SentenceSplitter(NO_CUT)
    assert splitter.feed("Intro\n```\ncode") == ["Intro"]
    assert splitter.flush() == []
    assert splitter.feed("1. Item\n") == ["Item"]


def test_a_long_line_of_many_sentences_fed_in_pieces() -> None:
    """Far past the buffer's compaction point (4096 characters of one line)."""
    expected = [f"This is sentence number {i}." for i in range(400)]
    text = " ".join(expected)
    assert stream([text[i : i + 7] for i in range(0, len(text), 7)]) == expected
    assert stream([s + " " for s in expected]) == expected


# --- where long sentences are cut ---------------------------------------------------

WORDS = "the quick brown fox jumps over a lazy dog and "  # 47 characters: no alignment


def _check_cut(sentences: list[str], text: str, limit: int) -> None:
    """Every part fits, no word is lost or split, each cut is at the last space that fits."""
    assert " ".join(s.rstrip(",") for s in sentences).split() == clean_sentence(text).split()
    assert all(len(s) <= limit + 1 for s in sentences)
    for head, rest in zip(sentences, sentences[1:], strict=False):
        assert head.endswith(",")
        assert len(head) + len(rest.split()[0]) >= limit  # the next word did not fit


def _cut_both_ways(text: str, **kwargs: int) -> list[str]:
    """The same parts whole and streamed word by word."""
    whole = split_sentences(text, **{"first_sentence_chars": NO_CUT, **kwargs})
    splitter = SentenceSplitter(kwargs.get("first_sentence_chars", NO_CUT),
                                max_sentence_chars=kwargs.get("max_sentence_chars", 500))
    streamed = [s for w in re.split(r"(?<= )", text) for s in splitter.feed(w)]
    assert streamed + splitter.flush() == whole
    return whole


@pytest.mark.parametrize("limit", [60, 500])
def test_a_run_on_is_cut_at_its_last_space_that_fits(limit: int) -> None:
    text = WORDS * 40 + "end."
    _check_cut(_cut_both_ways(text, max_sentence_chars=limit), text, limit)


def test_a_run_on_is_cut_at_its_last_clause_that_fits() -> None:
    text = ("The lights in the kitchen are on, the hall is dark; the door is locked, "
            "and the garage is open, ") * 4 + "that is all."
    parts = _cut_both_ways(text, max_sentence_chars=100)
    assert parts[0] == ("The lights in the kitchen are on, the hall is dark; the door is locked, "
                        "and the garage is open,")  # 97 characters: the last clause that fits
    assert all(p[-1] in ",;." for p in parts) and all(len(p) <= 101 for p in parts)


def test_a_run_on_without_a_space_after_its_start_is_cut_at_the_limit() -> None:
    text = "Key: " + "x" * 1200
    parts = _cut_both_ways(text)
    assert [len(p) for p in parts] == [501, 501, 205]  # not "Key:" alone


def test_a_run_on_is_not_cut_in_its_first_twenty_characters() -> None:
    text = "Yes, " + WORDS * 20
    parts = _cut_both_ways(text, max_sentence_chars=100)
    assert len(parts[0]) > 90


def test_a_clause_exactly_at_the_limit_is_used_one_past_it_is_not() -> None:
    head = "a" * 30 + " " + "b" * 28 + ","  # 60 characters with its comma
    assert _cut_both_ways(head + " next words here.", max_sentence_chars=60)[0] == head
    head = "a" * 30 + " " + "b" * 29 + ","  # 61: only the space before it fits
    assert _cut_both_ways(head + " next words here.", max_sentence_chars=60)[0] == "a" * 30 + ","
    # The same for the first sentence's cut: the last clause within 40 characters.
    text = "a" * 23 + ", " + "b" * 15 + ", then the rest of it goes on and on."
    assert _cut_both_ways(text, first_sentence_chars=40)[0] == "a" * 23 + ","


@pytest.mark.parametrize(
    "text",
    [
        "Please look at [the first one, the second one](https://x.com) and then all the others.",
        "Please look at (the first one, the second one) and then at all the others.",
        "Please run `ha core check, then restart` and then wait for the others.",
    ],
)
def test_never_cut_inside_a_link_brackets_or_code(text: str) -> None:
    assert _cut_both_ways(text, first_sentence_chars=40) == [clean_sentence(text)]


@pytest.mark.parametrize(
    "text",
    [
        "Look at [the link](https://x.com), and then at all of the others too if you want.",
        "Look at the two (and only two), and then at all of the others too if you want.",
        "Now run `ha core check`, and then restart the whole system if it still hangs.",
    ],
)
def test_cut_after_a_closed_link_bracket_or_code_span(text: str) -> None:
    parts = _cut_both_ways(text, first_sentence_chars=30)
    assert len(parts) == 2 and parts[1].startswith("and then")


def test_an_unclosed_bracket_in_an_earlier_sentence_does_not_stop_cuts() -> None:
    text = "Note (see below. " + "The kitchen is warm, the hall is cold, " * 5 + "done."
    parts = _cut_both_ways(text, max_sentence_chars=60)
    assert parts[0] == "Note see below."
    assert all(p.endswith(("warm,", "cold,")) for p in parts[1:-1])


def test_a_cut_at_a_colon_keeps_it() -> None:
    text = ("This first sentence runs well past the configured limit without a comma "
            "until here: and then it goes on. Next.")
    parts = _cut_both_ways(text, first_sentence_chars=40)
    assert parts[0].endswith("until here:")
    assert parts[1:] == ["and then it goes on.", "Next."]


def test_only_the_first_part_of_a_long_first_sentence_is_cut() -> None:
    text = "First, " + ", ".join(f"then item number {i}" for i in range(15)) + "."
    parts = _cut_both_ways(text, first_sentence_chars=40)
    assert len(parts) == 2 and len(parts[1]) > 200


@pytest.mark.parametrize("limit", [100, 500])
def test_a_line_of_exactly_the_limit_is_not_cut(limit: int) -> None:
    line = "a" * 30 + ", " + "b" * (limit - 32)
    assert len(line) == limit
    for kwargs in ({"first_sentence_chars": limit},
                   {"first_sentence_chars": NO_CUT, "max_sentence_chars": limit}):
        splitter = SentenceSplitter(**kwargs)
        assert splitter.feed(line) + splitter.feed("\n") == [line]
        assert split_sentences(line + "\n", **kwargs) == [line]


def test_the_documented_default_limits() -> None:
    first = "a" * 30 + ", " + "b" * 69  # 101 characters: one past the default of 100
    assert SentenceSplitter().feed(first + "\n") == ["a" * 30 + ",", "b" * 69]
    assert split_sentences(first) == ["a" * 30 + ",", "b" * 69]
    assert split_sentences(first[:-1]) == [first[:-1]]
    run_on = "x" * 501  # one past the default of 500
    assert split_sentences(run_on) == ["x" * 500 + ",", "x"]
    assert SentenceSplitter(NO_CUT).feed(run_on + "\n") == ["x" * 500 + ",", "x"]


def test_a_held_abbreviation_after_a_run_on_cut_still_waits() -> None:
    splitter = SentenceSplitter(NO_CUT)
    parts = splitter.feed(WORDS * 12 + "ask Dr.") + splitter.feed(" Smith arrives.")
    assert parts[-1].endswith("ask Dr. Smith arrives.")


def test_clean_text_never_cuts_or_drops_punctuation() -> None:
    text = ("Good morning, today will be mostly sunny with a light breeze from the west — "
            "temperatures climbing to twenty four degrees in the afternoon.")
    assert clean_text(text) == text
    assert clean_text("It will be sunny all day — with a light breeze.") == (
        "It will be sunny all day — with a light breeze.")
    assert clean_text("I drive a Model X\nIt is red") == "I drive a Model X. It is red."
