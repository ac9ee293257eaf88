"""`wyoming-verba text`: print, one per line, exactly the sentences a backend would be
given for a text, after cleanup, splitting (with the server's settings), the lexicon and
normalisation, so pronunciation can be checked without a speaker."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence

from .backends.factory import ENGINES, chain_names, engine_class
from .settings import Settings, SettingsError, load_settings
from .settings import build_parser as settings_parser
from .text import SentenceSplitter
from .text.lexicon import Lexicon, LexiconError
from .text.normalize import normalize


def spoken_sentences(settings: Settings, text: str, backend: str, *,
                     ssml: bool = False) -> Iterator[str]:
    """The sentences `backend` is given for `text`, in order: what reply.py and the
    chain do, for a request in `settings.language`."""
    splitter = SentenceSplitter(settings.first_sentence_chars, ssml=ssml,
                                max_sentence_chars=settings.max_sentence_chars)
    lexicon = Lexicon(settings.lexicon)
    normalizes = engine_class(backend).normalizes_text
    for sentence in splitter.feed(text) + splitter.flush():
        sentence = lexicon.apply(sentence, settings.language)
        yield normalize(sentence, settings.language) if normalizes else sentence


def first_backend(settings: Settings) -> str:
    """The backend that speaks a sentence first with these settings (what `auto` keeps
    on this machine, the first of an explicit chain). Raises SettingsError."""
    names, _skipped = chain_names(settings)
    for name in names:
        try:
            engine_class(name)
        except ImportError:
            if settings.backend_explicit:
                extra = ENGINES[name].extra
                raise SettingsError(f"backend {name} is not installed here (pip install "
                                    f"'wyoming-verba[{extra}]')") from None
            continue
        return name
    raise SettingsError("no backend of --backend is usable on this machine")


def build_parser() -> argparse.ArgumentParser:
    """The server's parser plus TEXT and --ssml: every server flag applies."""
    parser = settings_parser()
    parser.prog = "wyoming-verba text"
    parser.description = (
        "Print, one per line, the sentences a backend would be given for TEXT (after "
        "cleanup, splitting, --lexicon and normalisation in --language). --backend names "
        "the backend (default: the first one the chain would use here); every server flag "
        "applies.")
    parser.add_argument("text", nargs="?", help="the text (default: standard input)")
    parser.add_argument("--ssml", action="store_true", help="the text is SSML")
    return parser


def main(argv: Sequence[str]) -> int:
    parser = build_parser()
    try:
        settings = load_settings(argv, parser=parser)
        args = parser.parse_args(argv)  # accepted above: only TEXT and --ssml are new
        backend = first_backend(settings)
        text = args.text if args.text is not None else sys.stdin.read()
        sentences = list(spoken_sentences(settings, text, backend, ssml=args.ssml))
    except (SettingsError, LexiconError) as exc:
        print(f"wyoming-verba text: {exc}", file=sys.stderr)
        return 2
    how = "normalised" if engine_class(backend).normalizes_text else "as written"
    print(f"wyoming-verba text: what {backend} is given ({settings.language}, {how}):",
          file=sys.stderr)
    for sentence in sentences:
        print(sentence)
    return 0
