"""CSM stop rules on synthetic frames: the frame cap in spoken words, repetition on
codebook 0 under sampling, and what a stopped sentence reports."""

from __future__ import annotations

import random

from wyoming_verba.backends.csm.stopping import (
    FRAME_RATE,
    REPEAT_FRAMES,
    StopRules,
    StopState,
    frame_cap,
    spoken_words,
)


def sampled_frame(rng: random.Random, semantic: int) -> list[int]:
    """A frame as sampling makes it: codebook 0 given, codebooks 1-31 drawn afresh."""
    return [semantic] + [rng.randrange(1, 2048) for _ in range(31)]


def run(state: StopState, semantics: list[int], seed: int = 0) -> int:
    rng = random.Random(seed)
    for n, semantic in enumerate(semantics, 1):
        if state.on_frame(sampled_frame(rng, semantic)):
            return n
    return len(semantics)


def test_cap_counts_spoken_words_after_number_expansion():
    # "555-1234" is spoken as seven words: counting its characters gave 2.9 s and cut it
    assert spoken_words("Call 555-1234.") == spoken_words(
        "Call five five five, one two three four.") == 8
    assert frame_cap("Call 555-1234.") == frame_cap("Call five five five, one two three four.")
    assert frame_cap("Call 555-1234.") / FRAME_RATE >= 2 * 8 / 2.5  # twice 150 words/min
    # ... in the sentence's language; a long word counts for more than a short one
    assert spoken_words("Um 14:30 Uhr.", "de-DE") == spoken_words("Um vierzehn Uhr dreißig.",
                                                                  "de-DE")
    assert spoken_words("Internationalization.") > spoken_words("Hi.")
    assert spoken_words("Appelez le 555-1234.", "fr-FR") == 9  # not normalised: per digit
    assert frame_cap("Hi.") < frame_cap("Hello there, how are you doing today?")
    assert frame_cap("word " * 10_000, 45.0) == round(45 * FRAME_RATE)


def test_repetition_on_codebook_0_fires_under_sampling():
    # a stuck model cycling through five sounds: no two frames are identical
    state = StopState(StopRules(max_frames=500))
    n = run(state, [100 + i % 5 for i in range(500)])
    assert state.reason == "repeat" and n == REPEAT_FRAMES
    assert state.cut
    # a hum on two codes with the odd stray one: still stuck
    rng = random.Random(1)
    hum = [rng.choice([7, 8]) if i % 10 else rng.randrange(2048) for i in range(500)]
    state = StopState(StopRules(max_frames=500))
    assert run(state, hum) == REPEAT_FRAMES and state.reason == "repeat"


def test_speech_like_codebook_0_is_not_repetition():
    rng = random.Random(2)
    # speech: codebook 0 varies, sometimes holding a value for a frame or two
    speech = []
    while len(speech) < 400:
        speech += [rng.randrange(2048)] * rng.choice([1, 1, 1, 2, 3])
    state = StopState(StopRules(max_frames=400))
    assert run(state, speech[:400]) == 400 and state.reason == "cap"


def test_stop_state_reports_how_the_sentence_ended():
    state = StopState(StopRules(max_frames=100, silence_frames=3))
    assert not state.on_frame([5] * 32)
    for rms in (0.0, 0.2, 0.1, 0.0):  # leading silence, speech, one quiet frame
        assert not state.on_level(rms)
    assert state.on_frame([0] * 31 + [9]) and state.reason == "end" and not state.cut
    assert not state.on_level(0.0)  # decoded after the end frame: counted, no new reason
    assert state.reason == "end" and state.trailing_quiet == 2 and state.heard_speech
    assert not state.on_level(0.0) and state.reason == "end"  # the 3rd: still the end
