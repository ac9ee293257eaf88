"""What CSM-1b is given to read: the sentence with only the punctuation it speaks well.

CSM is a base model that learnt prosody from transcripts of conversation: commas, full
stops, question and exclamation marks. Marks that are rare there (ellipses, dashes,
semicolons, stray symbols, "?!" runs, a sentence with no final mark) are where it is known
to babble, hum or run on. The sentence arrives cleaned (`text.cleanup`) and normalised
(numbers and known symbols in words); this maps what is left onto the marks it knows,
keeping the pauses they stood for."""

from __future__ import annotations

import re
import unicodedata

_ELLIPSIS = re.compile(r"\s*(?:…|\.{2,})\s*")
_DASH = re.compile(r"\s+[-‐‑‒–—―]+\s+|\s*[–—―]+\s*")  # a spaced hyphen, or any long dash
_CLAUSE = re.compile(r"\s*[;:]\s*")
_MARK_RUN = re.compile(r"([!?])[!?]+")
_COMMAS = re.compile(r"\s*(?:,\s*){2,}")
_SPACE_BEFORE = re.compile(r"\s+([,.!?])")
_MARK_AFTER_COMMA = re.compile(r",\s*([.!?])")
_SPACES = re.compile(r"\s+")
_KEPT = set(",.!?'’-")  # besides letters, marks (accents) and digits


def _spoken(ch: str) -> str:
    """A character that reaches the model, or a space where one would not."""
    if ch in _KEPT or ch.isspace():
        return ch
    category = unicodedata.category(ch)
    return ch if category[0] in "LMN" else " "


def model_text(sentence: str) -> str:
    """The sentence as CSM reads it: ellipses and dashes become commas (a pause), ';' and
    ':' commas, "?!" runs one mark, other symbols spaces; it ends in '.', '!' or '?'.
    Returns "" when nothing speakable is left."""
    text = sentence.strip()
    ends_with_ellipsis = bool(re.search(r"(?:…|\.{2,})\s*$", text))
    text = _ELLIPSIS.sub(", ", text)
    text = _DASH.sub(", ", text)
    text = _CLAUSE.sub(", ", text)
    text = _MARK_RUN.sub(r"\1", text)
    text = "".join(_spoken(ch) for ch in text)
    text = _SPACES.sub(" ", text)
    text = _SPACE_BEFORE.sub(r"\1", text)
    text = _COMMAS.sub(", ", text)
    text = _MARK_AFTER_COMMA.sub(r"\1", text)
    text = text.strip(" ,'’-")
    if not any(ch.isalnum() for ch in text):
        return ""
    text = text.rstrip(",")
    if ends_with_ellipsis and text[-1] not in ".!?":
        return text + "."
    return text if text[-1] in ".!?" else text + "."
