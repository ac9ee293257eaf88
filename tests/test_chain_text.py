"""What each backend is given (backends/chain.py with Backend.normalizes_text):
normalised text in its voice's language for the backends that ask for it, the text as
written for the others, and the rest of a sentence after a failover in the terms of the
backend that failed."""

from __future__ import annotations

from collections.abc import AsyncIterator

from tests.fakes.tone_backend import Faults, ToneBackend
from wyoming_verba.backends.base import Chunk, Utterance, Voice, WordMark
from wyoming_verba.backends.chain import BackendChain
from wyoming_verba.backends.factory import ENGINES, engine_class

SENTENCE = "It costs $5.50 at 14:30."
SPOKEN = "It costs five dollars and fifty cents at fourteen thirty."


def tone(name: str, normalizes: bool, **faults) -> ToneBackend:
    backend = ToneBackend(name=name, faults=Faults(**faults))
    backend.normalizes_text = normalizes
    return backend


class Markless(ToneBackend):
    """A backend that reports no word marks (as Piper and espeak-ng do)."""

    async def synthesize(self, text: str, voice: Voice, speaker: str | None,
                         utterance: Utterance) -> AsyncIterator[Chunk]:
        async for chunk in super().synthesize(text, voice, speaker, utterance):
            if not isinstance(chunk, WordMark):
                yield chunk


async def speak(chain: BackendChain, text: str, voice: str | None = None) -> None:
    choice = chain.resolve(voice)
    async for _ in chain.speak(text, choice, Utterance("t")):
        pass


async def chain_of(*backends: ToneBackend) -> BackendChain:
    chain = BackendChain(list(backends))
    await chain.start()
    return chain


def test_which_backends_ask_for_normalised_text() -> None:
    """CSM reads digits unreliably, Piper and espeak-ng through espeak-ng's rules; Edge
    normalises itself (and its word marks index our text), a remote server does too."""
    asks = {name: engine_class(name).normalizes_text for name in ENGINES}
    assert asks == {"csm": True, "edge": False, "piper": True, "espeak": True,
                    "remote": False}


async def test_a_normalising_backend_gets_words_the_others_the_text() -> None:
    words, written = tone("csm-like", True), tone("edge-like", False)
    await speak(await chain_of(words), SENTENCE)
    await speak(await chain_of(written), SENTENCE)
    assert words.attempts == [SPOKEN]
    assert written.attempts == [SENTENCE]


async def test_in_the_language_of_the_voice_the_backend_speaks() -> None:
    words = tone("csm-like", True)
    chain = await chain_of(words)
    await speak(chain, "Am 2. Mai kostet es 5,50 €.", voice="tone-de")
    await speak(chain, "Am 2. Mai kostet es 5,50 €.")  # the default voice is English
    assert words.attempts == ["Am zweiten Mai kostet es fünf Euro fünfzig.",
                              "Am two. Mai kostet es five euros and fifty cents."]


async def test_failover_before_audio_hands_each_backend_its_own_form() -> None:
    words = tone("csm-like", True, fail_before_audio=1)
    written = tone("edge-like", False)
    await speak(await chain_of(words, written), SENTENCE)
    assert words.attempts == [SPOKEN] and written.attempts == [SENTENCE]

    written = tone("edge-like", False, fail_before_audio=1)
    words = tone("piper-like", True)
    await speak(await chain_of(written, words), SENTENCE)
    assert written.attempts == [SENTENCE] and words.attempts == [SPOKEN]


async def test_the_rest_after_a_failure_mid_sentence_is_in_the_failed_backends_terms() -> None:
    """Word marks index the text the failed backend was given: the next backend speaks
    the rest of the normalised sentence, not a piece of the written one."""
    words = tone("csm-like", True, fail_after_words=3)
    written = tone("edge-like", False)
    await speak(await chain_of(words, written), SENTENCE)
    assert words.attempts == [SPOKEN]
    assert written.attempts == ["dollars and fifty cents at fourteen thirty."]

    written = tone("edge-like", False, fail_after_words=3)
    words = tone("piper-like", True)
    await speak(await chain_of(written, words), SENTENCE)
    assert written.attempts == [SENTENCE]
    assert words.attempts == ["at fourteen thirty."]


async def test_a_backend_without_word_marks_hands_on_the_written_sentence() -> None:
    words = Markless(name="csm-like", faults=Faults(fail_after_words=2))
    words.normalizes_text = True
    written = tone("edge-like", False)
    await speak(await chain_of(words, written), SENTENCE)
    assert words.attempts == [SPOKEN]
    assert written.attempts == [SENTENCE]  # the whole sentence again, as written


async def test_a_normalisation_bug_speaks_the_sentence_as_written(monkeypatch, caplog) -> None:
    def broken(text: str, language: str) -> str:
        raise ValueError("bug")

    monkeypatch.setattr("wyoming_verba.backends.chain.normalize", broken)
    backend = tone("words", True)
    await speak(await chain_of(backend), SENTENCE)
    assert backend.spoken == [SENTENCE]
    failed = [r for r in caplog.records if r.getMessage() ==
              f"could not normalise {SENTENCE!r}; speaking it as written"]
    assert len(failed) == 1 and failed[0].exc_info is not None


async def test_a_backend_without_word_marks_is_reported_when_its_sentence_is_repeated(
        caplog) -> None:
    caplog.set_level("INFO", logger="wyoming_verba.backends.chain")
    words = Markless(name="words", faults=Faults(fail_after_words=1))
    other = tone("other", False)
    await speak(await chain_of(words, other), "one two three")
    assert other.spoken == ["one two three"]
    assert ("words reported no words: the next backend repeats the whole sentence after "
            "0.1 s of it") in [r.getMessage() for r in caplog.records]
