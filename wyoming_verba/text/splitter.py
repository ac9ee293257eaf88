"""Text cleanup and the incremental sentence splitter.

Replies from Home Assistant's LLM agents arrive token by token and are full of markdown,
emoji and URLs. `SentenceSplitter.feed` returns each sentence, cleaned, as soon as it is
complete, so the first one can be spoken while the rest is still being generated.

Pipeline per feed: (SSML tags → text) → lines (markdown block syntax: headings, lists,
quotes, tables, code fences) → sentence boundaries on the line's raw inline text →
`clean_sentence` on each whole sentence (inline markdown, HTML, URLs, emoji, symbols).
Cleaning whole sentences, never raw chunks, is what makes markdown that straddles feed
boundaries ("**bo" + "ld**") come out right.

When a sentence ends (see `SentenceSplitter` for the exact rule):
- `. ` `! ` `? ` `… ` (optionally followed by closing quotes/brackets/emphasis), CJK
  `。！？`, and every newline end a sentence, in the feed that completes them.
- A feed that ENDS right after `!` or `?` emits the sentence at once (an LLM may pause for
  seconds before the next token). A feed ending with `.` does too when the word before is a
  plain word (≥ 2 letters, not an abbreviation): no later text can turn "word." into a
  number or an abbreviation. The one thing that can: a scheme-less domain split by the
  tokenizer ("example." + "com"); accepted, it only splits a sentence in two.
- Held back: abbreviations (`Dr.`, `Mr.`, `e.g.`, `i.e.`, `U.S.`, `Mio.`, spaced ones such
  as `d. h.` and `u. a.`, single initials `J.` but not a unit after a number, `9 W.`),
  `etc.`/`a.m.`/`p.m.` unless the next word starts upper-case, and small numbers `3. `
  unless the next word starts upper-case and is not a month ("am 3. Mai").

Cutting: the first sentence of a stream longer than `first_sentence_chars` is cut at a
clause boundary (`, ` `; ` `: ` ` — `) at least 20 characters in, so the first audio
starts sooner. Every sentence longer than `max_sentence_chars` (--max-sentence-chars) is cut
too (backends choke on run-on text, and it bounds the buffer so splitting stays linear in
the input).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable

from .cleanup import _SPACES, clean_sentence
from .ssml import SsmlFilter

MIN_CUT_CHARS = 20  # a first-sentence cut leaves at least this much before the boundary
_MAX_PREFIX_CHARS = 64  # line-start lookahead (indentation, markers) before giving up
_MAX_TOKEN_CHARS = 64  # how far back to look for the word before a period

# --- word lists ---------------------------------------------------------------------

# A period after these never ends a sentence.
NEVER_END = frozenset(
    "mr mrs ms mx dr prof sr jr st mt ft vs cf fig figs no nos vol vols approx dept est "
    "gen gov lt col sgt capt rev hon mme mlle bzw ca ggf evtl nr vgl hr fr dipl ing inkl "
    "zb z sog sen rep www mio mrd tsd".split()  # z: "z. B."; www: "www.example.org";
)  # mio: "5 Mio. €", "1 Mio. Einwohner" (a noun always follows in German)
# A period after these ends a sentence only if the next word starts upper-case.
END_IF_CAPITAL = frozenset("etc usw am pm inc ltd co corp bros jan feb mar apr jun jul aug "
                           "sep sept oct nov dec".split())
# German words after which "2." is an ordinal, never a sentence end ("zum 3. Mal").
ORDINAL_AFTER = frozenset(
    "der die das den dem des im am zum zur vom beim ab bis seit ihr sein mein ein".split()
)
MONTHS = frozenset(
    "january february march april may june july august september october november december "
    "januar februar märz mai juni juli oktober dezember janvier février mars avril juin "
    "juillet août septembre octobre novembre décembre".split()
)

# --- regular expressions ------------------------------------------------------------

_TERMINATOR = re.compile(r"[.!?…。！？]")
_TERMINATOR_RUN = re.compile(r"[.!?…。！？]+")
_CLOSERS = re.compile(r"[\"'”’»)\]}*_`]*")
_CJK_TERMINATORS = "。！？"
_CLAUSE = re.compile(r"[,;:](?= )| [—–](?= )")
_URL_CHARS = re.compile(r"[/:=&@.]")
_WORD_AFTER = re.compile(r"[^\W\d_]+")
_NUMBER = re.compile(r"[\d.,]*\d")

_INCOMPLETE_MARKER = re.compile(r"(?:`{1,2}|~{1,2}|#{1,6}|[-*+]|\d{1,9}[.)]?)?")
_LINE_MARKER = re.compile(
    r"(?P<fence>```|~~~)"
    r"|(?P<heading>#{1,6})(?:[ \t]+|$)"
    r"|(?P<bullet>[-*+])[ \t]+"
    r"|(?P<number>\d{1,9})[.)](?:[ \t]+|$)"
)
_QUOTE_INDENT = re.compile(r"[ \t]*(?:>[ \t]*)*")

# --- the splitter -------------------------------------------------------------------


class Decision(enum.Enum):
    """What a terminator found in the buffer means."""

    BOUNDARY = "boundary"  # the sentence ends here
    NOT_A_BOUNDARY = "not"  # an abbreviation, a number, a URL...: scan on
    NEED_MORE = "more"  # the next characters decide: wait for them


def _plain_word(token: str) -> bool:
    return len(token) >= 2 and token.replace("'", "").replace("-", "").isalpha()


def _dotted(token: str) -> bool:
    """U.S, e.g, i.e, z.B, a.m: letters joined by periods."""
    parts = token.split(".")
    return len(parts) > 1 and all(len(p) <= 2 and p.isalpha() for p in parts)


class SentenceSplitter:
    """Incremental sentence splitter for streamed text (see the module docstring for the
    rules). `feed` returns the cleaned sentences completed by that text; `flush` returns
    the cleaned rest at end of stream. Never returns "" or punctuation-only sentences.

    Linear time: the current line is scanned from a remembered offset, never from its
    start again, and a sentence never grows beyond `max_sentence_chars`."""

    def __init__(
        self, first_sentence_chars: int = 100, ssml: bool = False, max_sentence_chars: int = 500
    ) -> None:
        self.first_sentence_chars = first_sentence_chars
        self.max_sentence_chars = max_sentence_chars
        self._ssml = SsmlFilter() if ssml else None
        self._first_pending = True
        # line state
        self._at_line_start = True
        self._prefix = ""  # raw start of the line, until its markdown marker is known
        self._in_code = False
        self._skip_line = False  # rest of this line is code or a fence's info string
        # inline state of the current line
        self._buf = ""
        self._start = 0  # where the current sentence begins in _buf
        self._pos = 0  # where scanning resumes

    # -- public API --

    def feed(self, text: str) -> list[str]:
        if self._ssml is not None:
            text = self._ssml.feed(text)
        out: list[str] = []
        self._process(text, out)
        return out

    def flush(self) -> list[str]:
        out: list[str] = []
        if self._ssml is not None:
            self._process(self._ssml.feed("", final=True), out)
        if self._at_line_start and self._prefix:
            self._classify_line(final=True)
            self._start_inline(out)
        self._end_line(out)
        self._at_line_start, self._prefix = True, ""
        self._in_code = self._skip_line = False
        return out

    # -- lines --

    def _process(self, text: str, out: list[str]) -> None:
        i, n = 0, len(text)
        while i < n:
            nl = text.find("\n", i)
            stop = n if nl < 0 else nl
            if self._at_line_start:
                # Only as much as a marker needs; the rest of the line goes inline.
                room = max(0, _MAX_PREFIX_CHARS + 1 - len(self._prefix))
                take = min(stop, i + room)
                self._prefix += text[i:take]
                i = take
                if not self._classify_line(final=(i == nl)):
                    return  # undecided: all of this feed is in _prefix
                self._start_inline(out)
                continue
            if not self._skip_line:
                self._append(text[i:stop], out)
            if nl < 0:
                return
            self._end_line(out)
            self._at_line_start, self._skip_line = True, False
            i = nl + 1

    def _start_inline(self, out: list[str]) -> None:
        rest, self._prefix = self._prefix, ""
        if rest and not self._skip_line:
            self._append(rest, out)

    def _classify_line(self, final: bool) -> bool:
        """Decide what the line in `_prefix` is. Leaves the inline remainder in `_prefix`
        and returns True once decided; False while more characters are needed."""
        prefix = self._prefix
        indent = _QUOTE_INDENT.match(prefix)
        body_at = indent.end() if indent else 0
        body = prefix[body_at:]
        undecided = _INCOMPLETE_MARKER.fullmatch(body) is not None
        if undecided and not final and len(prefix) <= _MAX_PREFIX_CHARS:
            return False
        self._at_line_start = False
        marker = _LINE_MARKER.match(body)
        if marker is not None and marker.lastgroup == "fence":
            self._in_code = not self._in_code
            self._skip_line = True  # the fence and its info string ("```python")
        elif self._in_code:
            self._skip_line = True  # never read code aloud (_start_inline drops _prefix)
        else:
            self._prefix = body[marker.end():] if marker else body
        return True

    def _end_line(self, out: list[str]) -> None:
        self._scan(out, final=True)
        if self._start < len(self._buf):
            self._emit(self._buf[self._start:], out)
        self._buf, self._start, self._pos = "", 0, 0

    # -- inline text and sentence boundaries --

    def _append(self, text: str, out: list[str]) -> None:
        text = _SPACES.sub(" ", text)
        if text.startswith(" ") and (not self._buf or self._buf.endswith(" ")):
            text = text[1:]
        if not text:
            return
        if self._start > 4096:  # compact now and then, not per sentence
            self._buf = self._buf[self._start:]
            self._pos -= self._start
            self._start = 0
        self._buf += text
        self._scan(out, final=False)
        self._cut_long(out)

    def _scan(self, out: list[str], final: bool) -> None:
        buf = self._buf
        pos = self._pos
        while True:
            m = _TERMINATOR.search(buf, pos)
            if m is None:
                self._pos = len(buf)
                return
            k = m.start()
            run_end = _TERMINATOR_RUN.match(buf, k).end()  # type: ignore[union-attr]
            end = _CLOSERS.match(buf, run_end).end()  # type: ignore[union-attr]
            decision = self._decide(buf, k, run_end, end, final)
            if decision is Decision.BOUNDARY:
                self._emit(buf[self._start:end], out)
                self._start = pos = end
            elif decision is Decision.NOT_A_BOUNDARY:
                pos = run_end
            else:
                self._pos = k
                return

    def _decide(self, buf: str, k: int, run_end: int, end: int, final: bool) -> Decision:
        term = buf[k:run_end]
        if term[0] in _CJK_TERMINATORS:
            return Decision.BOUNDARY
        if buf.count("`", self._start, k) % 2:  # inside `code`: `light.turn_on` is one word
            return Decision.NOT_A_BOUNDARY  # whatever follows: no need to wait for it
        if end >= len(buf):  # the data ends right here
            if final:
                return Decision.BOUNDARY
            token = self._token(buf, k)
            if term[0] in "!?" and token and not _URL_CHARS.search(token):
                return Decision.BOUNDARY  # not "?" inside a URL ("/a?b=1") nor "![image]"
            if term == "." and _plain_word(self._token(buf, k)) and not self._held(buf, k):
                return Decision.BOUNDARY
            return Decision.NEED_MORE
        if buf[end] != " ":
            return Decision.NOT_A_BOUNDARY  # 3.5, example.com, e.g.x, Yahoo!Mail
        if term[0] in "!?…" or len(term) > 1:
            return Decision.BOUNDARY
        token = self._token(buf, k)
        low = token.lower()
        conditional = low.replace(".", "") in END_IF_CAPITAL  # etc, a.m, p.m
        if len(token) == 1 and token.islower():  # "d. h.", "u. a.", but "5 m. Dann"
            spaced = _spaced_abbreviation(buf, k, end, final)
            if spaced is not None:
                return spaced
        if not conditional and (low in NEVER_END or _dotted(token) or (
            len(token) == 1 and token.isupper() and token != "I"  # initials: J. R. R.
            and not _NUMBER.fullmatch(self._token(buf, k - 2))  # a unit: "uses 9.5 W."
        )):
            return Decision.NOT_A_BOUNDARY
        ordinal = token.isdigit() and len(token) <= 2
        if ordinal and self._token(buf, k - len(token) - 1).lower() in ORDINAL_AFTER:
            return Decision.NOT_A_BOUNDARY  # German ordinals: "im 2. Stock", "zum 3. Mal"
        if not (conditional or ordinal):
            return Decision.BOUNDARY
        if end + 1 >= len(buf):
            return Decision.BOUNDARY if final else Decision.NEED_MORE
        nxt = buf[end + 1]
        if not nxt.isupper():
            return Decision.NOT_A_BOUNDARY
        if conditional:
            return Decision.BOUNDARY
        word = _WORD_AFTER.match(buf, end + 1)
        if word is None:
            return Decision.BOUNDARY
        if word.end() >= len(buf) and not final:
            return Decision.NEED_MORE  # "3. Ma…" may become a month
        return Decision.NOT_A_BOUNDARY if word.group(0).lower() in MONTHS else Decision.BOUNDARY

    def _held(self, buf: str, k: int) -> bool:
        low = self._token(buf, k).lower()
        return low in NEVER_END or low in END_IF_CAPITAL  # a plain word: no periods

    def _token(self, buf: str, k: int) -> str:
        """The word before position k, without opening quotes, brackets or markup."""
        lo = max(self._start, k - _MAX_TOKEN_CHARS)
        space = buf.rfind(" ", lo, k)
        token = buf[(space + 1 if space >= 0 else lo):k]
        return token.lstrip("\"'“‘«([{*_`~>").rstrip("*_`")

    # -- emitting and cutting --

    def _emit(self, raw: str, out: list[str]) -> None:
        if self._first_pending and len(raw.strip()) > self.first_sentence_chars:
            cut = self._clause_cut(raw, 0)
            if cut is not None and clean_sentence(raw[cut:]):
                self._emit_head(raw[:cut], out)
                raw = raw[cut:]
        while len(raw) > self.max_sentence_chars:
            cut = _run_on_cut(raw, 0, self.max_sentence_chars)
            self._emit_head(raw[:cut], out)
            raw = raw[cut:]
        sentence = clean_sentence(raw)
        if sentence:
            out.append(sentence)
            self._first_pending = False

    def _cut_long(self, out: list[str]) -> None:
        """Cut the pending sentence if it is the long first one or a run-on."""
        pending = len(self._buf) - self._start
        if self._first_pending and pending > self.first_sentence_chars:
            cut = self._clause_cut(self._buf, self._start)
            if cut is not None:
                self._cut_at(cut, out)
                return
        while len(self._buf) - self._start > self.max_sentence_chars:
            self._cut_at(_run_on_cut(self._buf, self._start, self.max_sentence_chars), out)
            self._scan(out, final=False)  # sentences that end after the cut

    def _emit_head(self, raw: str, out: list[str]) -> None:
        """The first part of a cut sentence keeps a comma: the voice then sounds like it
        goes on instead of ending the sentence."""
        head = clean_sentence(raw)
        if head:
            out.append(head + "," if head[-1].isalnum() else head)
            self._first_pending = False

    def _cut_at(self, cut: int, out: list[str]) -> None:
        self._emit_head(self._buf[self._start:cut], out)
        self._start = cut
        self._pos = max(self._pos, cut)

    def _clause_cut(self, text: str, start: int) -> int | None:
        """Where to cut a long first sentence: the last clause boundary within the limit
        (at least MIN_CUT_CHARS in), else the first one after it. Offsets are absolute."""
        limit = start + self.first_sentence_chars
        best = _last_clause(text, start, start + MIN_CUT_CHARS, limit)
        if best is not None:
            return best
        for m in _CLAUSE.finditer(text, limit):
            cut = m.end() + 1  # after the space that confirms the boundary
            if _safe_cut(text[start:cut]):
                return cut
        return None


def _spaced_abbreviation(buf: str, k: int, end: int, final: bool) -> Decision | None:
    """A single lower-case letter's period at `k` inside a spaced abbreviation ("d. h.",
    "u. a.", "o. ä."): after "X. " or before " X.". None: it decides nothing."""
    if (k >= 4 and buf[k - 3:k - 1] == ". " and buf[k - 4].isalpha()
            and (k == 4 or not buf[k - 5].isalnum())):
        return Decision.NOT_A_BOUNDARY  # the "h." of "d. h."
    after = buf[end + 1:end + 3]
    if len(after) < 2:
        return None if final else Decision.NEED_MORE
    if after[0].isalpha() and after[1] == ".":
        return Decision.NOT_A_BOUNDARY  # the "d." of "d. h."
    return None


def _run_on_cut(text: str, start: int, max_chars: int) -> int:
    """Where to cut a sentence longer than `max_chars`: its last clause boundary within
    the limit, else its last space, else the limit itself."""
    limit = start + max_chars
    cut = _last_clause(text, start, start + MIN_CUT_CHARS, limit)
    if cut is None:
        space = text.rfind(" ", start + MIN_CUT_CHARS, limit)
        cut = space + 1 if space > 0 else limit
    return cut


def _last_clause(text: str, start: int, lo: int, hi: int) -> int | None:
    """The end of the last clause boundary in text[lo:hi] (offsets after its space)."""
    best = None
    for m in _CLAUSE.finditer(text, lo, hi + 2):  # +2: the lookahead needs its space
        cut = m.end() + 1
        if cut <= hi + 1 and _safe_cut(text[start:cut]):
            best = cut
    return best


def _safe_cut(head: str) -> bool:
    """Not inside a link, code span or bracket: the two halves are cleaned apart."""
    return (head.count("[") <= head.count("]") and head.count("(") <= head.count(")")
            and head.count("`") % 2 == 0)


def split_sentences(
    text: str, first_sentence_chars: int = 100, ssml: bool = False, max_sentence_chars: int = 500
) -> list[str]:
    """The whole text at once: the same sentences `SentenceSplitter` would stream."""
    splitter = SentenceSplitter(first_sentence_chars, ssml=ssml,
                                max_sentence_chars=max_sentence_chars)
    return splitter.feed(text) + splitter.flush()


def _join(sentences: Iterable[str]) -> str:
    parts = []
    for s in sentences:
        parts.append(s if s[-1] in ".!?…。！？,;:" else s + ".")
    return " ".join(parts)


def clean_text(text: str, *, ssml: bool = False) -> str:
    """Whole-text cleanup: markdown, HTML, URLs, emoji (and SSML tags with ssml=True)
    removed; one line of speakable text whose lines/items end in punctuation."""
    return _join(split_sentences(text, first_sentence_chars=1 << 30, ssml=ssml))
