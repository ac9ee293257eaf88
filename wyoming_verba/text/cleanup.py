"""Cleaning one sentence for speech: inline markdown, HTML, URLs, emoji and symbols out,
the words in. Works on whole sentences (see `splitter`), never on raw stream chunks."""

from __future__ import annotations

import html
import re

_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\((?:[^()\s]|\([^()]*\))*(?:\s+\"[^\"]*\")?\)")
_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_AUTOLINK = re.compile(r"<((?:https?|ftp)://[^>\s]+)>")
_CODE_SPAN = re.compile(r"`+([^`]*)`+")
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>|<!--.*?-->")
_URL = re.compile(r"\b(?:(?:https?|ftp)://|www\.)[^\s<>\"'`)\]]+", re.IGNORECASE)
_URL_HOST = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?(?:[^@/\s]*@)?([^/?#:\s]+)", re.IGNORECASE)
_ARROWS = re.compile(r"\s*(?:->|=>|<-|[\u2190-\u21ff\u27f0-\u27ff\u2b00-\u2b2f])\s*")
_EMOJI = re.compile(
    "["
    "\U0001f000-\U0001faff"  # pictographs, emoticons, transport, flags, supplemental
    "\u2600-\u27bf"  # miscellaneous symbols and dingbats
    "\u2b30-\u2bff"  # stars and other symbols
    "\u231a-\u23ff"  # watch, hourglass, media controls
    "\ufe0e\ufe0f\u200d\u20e3"  # variation selectors, zero-width joiner, keycap
    "\U000e0020-\U000e007f"  # tag characters (subdivision flags)
    "]+"
)
_STAR_RUN = re.compile(r"\*+")
_EDGE_UNDERSCORES = re.compile(r"(?<!\w)_+|_+(?!\w)")
_INNER_UNDERSCORES = re.compile(r"_+")
_STRIKE_MARK = re.compile(r"~~|==")
_DROPPED_SYMBOLS = re.compile(r"[#`\\^~{}\[\]()\"“”„«»‹›]")
_EDGE_QUOTES = re.compile(r"(?<![^\W_])['‘’‚]|['‘’‚](?![^\W_])")
_PIPE = re.compile(r"\s*\|\s*")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?…%)。！？、，])")
_REPEATED_COMMAS = re.compile(r"(?:\s*[,;:]\s*){2,}")
_LEADING_JUNK = re.compile(r"^(?:[\s,.;:!?…–—/|&]|-(?!\d))+")
_FINAL_RUN = re.compile(r"([.!?…。！？])[.!?…。！？]+$")
_COMMA_BEFORE_END = re.compile(r"[,;:\-–—]+([.!?…。！？])$")


def _url_host(match: re.Match[str]) -> str:
    return _host_of(match.group(0))


def _autolink_host(match: re.Match[str]) -> str:
    return _host_of(match.group(1))


def _host_of(url: str) -> str:
    """https://www.example.com/a?b=1 → example.com (keeping punctuation that followed)."""
    stripped = url.rstrip(".,;:!?")  # sentence punctuation after a URL is not part of it
    tail = url[len(stripped):]
    host = _URL_HOST.match(stripped)
    name = host.group(1).lower() if host else ""
    if name.startswith("www."):
        name = name[4:]
    return name + tail


# A character (or "www.") without which none of the markup steps of `clean_sentence` can
# change the text: most sentences have none and skip them (two dozen regex passes cost
# more than anything else the server does with a sentence's text).
_MARKUP_CHARS = re.compile(
    r"[\[\]<`&*_~=|:\-#\\^{}()\"“”„«»‹›'‘’‚"
    "\u2190-\u21ff\u27f0-\u27ff\u2b00-\u2bff"  # arrows
    "\U0001f000-\U0001faff\u2600-\u27bf\u231a-\u23ff\ufe0e\ufe0f\u200d\u20e3"
    "\U000e0020-\U000e007f"  # emoji, as _EMOJI
    "]|(?i:www\\.)"
)


def clean_sentence(text: str) -> str:
    """Inline cleanup of one sentence or line: speak the words, never the symbols.
    Returns "" when nothing speakable is left."""
    if _MARKUP_CHARS.search(text) is not None:
        text = _strip_markup(text)
    text = _SPACES.sub(" ", text.replace("\n", " "))
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _REPEATED_COMMAS.sub(", ", text)
    text = _LEADING_JUNK.sub("", text).strip()
    text = text.rstrip(",;-–—/|& ")
    text = _COMMA_BEFORE_END.sub(r"\1", text)
    # "Wait..." / "Really?!" → one mark: the same whether or not a feed split the run.
    text = _FINAL_RUN.sub(r"\1", text)
    if not any(ch.isalnum() for ch in text):
        return ""
    return text


def _strip_markup(text: str) -> str:
    """Links, code, tags, URLs, emoji, arrows, emphasis, table pipes and stray symbols."""
    text = _IMAGE.sub(" ", text)
    text = _LINK.sub(r"\1", text)
    text = _REF_LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(_autolink_host, text)
    text = _CODE_SPAN.sub(r"\1", text)
    text = _HTML_TAG.sub(" ", text)
    text = html.unescape(text)
    text = _URL.sub(_url_host, text)
    text = _EMOJI.sub(" ", text)
    text = _ARROWS.sub(", ", text)
    text = _STAR_RUN.sub("", text)
    text = _STRIKE_MARK.sub("", text)
    text = _EDGE_UNDERSCORES.sub("", text)
    text = _INNER_UNDERSCORES.sub(" ", text)  # snake_case → snake case
    text = _PIPE.sub(", ", text)  # table cells
    text = _DROPPED_SYMBOLS.sub(" ", text)
    return _EDGE_QUOTES.sub("", text)
