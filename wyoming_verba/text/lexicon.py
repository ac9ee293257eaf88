"""The pronunciation lexicon (`--lexicon FILE`): whole words and phrases replaced in
every sentence before normalisation, so a name or a brand is said the way the user
wants ("Hue" → "hyoo", "Siobhan" → "shiv awn").

The file is YAML or JSON:

    words:                  # every language
      Hue: hyoo
      nginx: engine x
      Home Assistant: home assistant   # a phrase: any spacing between its words
    languages:              # only for requests in that language
      de:
        Hue: hju
      en-GB:
        tomato: tomahto

Matching: whole words only ("Hue" never changes "Hues" or "Huey"; "Hue's" keeps its
"'s"). An entry written all in lower case matches any capitalisation ("nginx" matches
"Nginx" and "NGINX"); one with a capital letter matches exactly that spelling ("US"
leaves "us" alone). Longer entries win over shorter ones at the same place. Where several
entries match, the most specific language wins ("de-AT" over "de" over `words`), and
within one language an exact-case entry over a lower-case one. Replacements are used as
written.

The file is checked for changes (modification time, size, inode) at most once a second
when a sentence uses the lexicon, and reloaded; a file that no longer parses is logged
with its line and the last good lexicon stays in use."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

_LOGGER = logging.getLogger(__name__)

CHECK_INTERVAL = 1.0  # seconds between looks at the file's modification time
_TAG = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$")
_NULL = "tag:yaml.org,2002:null"


class LexiconError(ValueError):
    """A lexicon file that cannot be used; the message names the file and the line."""

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        self.path, self.line, self.problem = path, line, problem
        where = f"{path}, line {line}" if line else path
        super().__init__(f"{where}: {problem}")

    @property
    def brief(self) -> str:
        """The message without the file's name (for a flag that names it already)."""
        return f"line {self.line}: {self.problem}" if self.line else self.problem


@dataclass
class Entries:
    """A parsed lexicon: the entries for every language and those per language tag
    (lower-case, with "-")."""

    words: dict[str, str] = field(default_factory=dict)
    languages: dict[str, dict[str, str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.words) + sum(len(w) for w in self.languages.values())


# --- reading the file ----------------------------------------------------------------


def parse_lexicon(text: str, path: str = "<lexicon>") -> Entries:
    """Parse a lexicon document. Raises LexiconError naming the line of the problem."""
    if text.lstrip().startswith("{"):  # JSON: tabs may indent it, which YAML forbids
        text = text.replace("\t", " ")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise LexiconError(path, line, f"not valid YAML or JSON: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise LexiconError(path, None, f"not valid YAML or JSON: {exc}") from None
    entries = Entries()
    if root is None or _is_null(root):
        return entries
    if not isinstance(root, yaml.MappingNode):
        raise LexiconError(path, _line(root), "expected a mapping with `words:` and/or "
                                              "`languages:`")
    for key, line, value in _pairs(root, path, "section"):
        if key == "words":
            entries.words = _words(value, path)
        elif key == "languages":
            entries.languages = _languages(value, path)
        else:
            raise LexiconError(path, line, f"unknown section {key!r}: use `words:` (every "
                                           "language) or `languages:` (per language)")
    return entries


def load_lexicon(path: Path) -> Entries:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise LexiconError(str(path), None, f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise LexiconError(str(path), None, f"cannot read it: {exc.strerror or exc}") from None
    return parse_lexicon(text, str(path))


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL


def _pairs(node: yaml.MappingNode, path: str, what: str) -> list[tuple[str, int, yaml.Node]]:
    """The (key, its line, value node) triples of a mapping. Keys are read as text,
    whatever YAML would make of them (`no:`, `1984:`), and may not repeat."""
    seen: dict[str, int] = {}
    out: list[tuple[str, int, yaml.Node]] = []
    for key_node, value in node.value:
        line = _line(key_node)
        if not isinstance(key_node, yaml.ScalarNode) or _is_null(key_node):
            raise LexiconError(path, line, f"a {what} must be a word or phrase")
        key = " ".join(key_node.value.split())
        if key in seen:
            raise LexiconError(path, line, f"{key!r} is listed twice (first on line "
                                           f"{seen[key]})")
        seen[key] = line
        out.append((key, line, value))
    return out


def _words(node: yaml.Node, path: str) -> dict[str, str]:
    if _is_null(node):
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise LexiconError(path, _line(node), "expected entries such as `Hue: hyoo`")
    words: dict[str, str] = {}
    for entry, line, value in _pairs(node, path, "entry"):
        if not any(ch.isalnum() for ch in entry):
            raise LexiconError(path, line, f"{entry!r}: an entry needs a letter or a digit")
        if not isinstance(value, yaml.ScalarNode):
            raise LexiconError(path, line, f"{entry!r}: the replacement must be text, not "
                                           "a list or a mapping")
        replacement = " ".join(value.value.split())
        if _is_null(value) or not replacement:
            raise LexiconError(path, line, f"{entry!r} has no replacement")
        words[entry] = replacement
    return words


def _languages(node: yaml.Node, path: str) -> dict[str, dict[str, str]]:
    if _is_null(node):
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise LexiconError(path, _line(node), "expected languages such as `de:` with their "
                                              "entries")
    out: dict[str, dict[str, str]] = {}
    for tag, line, value in _pairs(node, path, "language"):
        if not _TAG.match(tag):
            raise LexiconError(path, line, f"{tag!r} is not a language tag such as de or "
                                           "en-GB")
        key = tag.replace("_", "-").lower()
        if key in out:
            raise LexiconError(path, line, f"language {tag!r} is listed twice")
        out[key] = _words(value, path)
    return out


# --- replacing -----------------------------------------------------------------------


class Replacer:
    """The entries that apply to one language, compiled into one pattern. `layers` go
    from the most specific (the language's own entries) to `words`."""

    def __init__(self, layers: list[dict[str, str]]) -> None:
        self.layers = [
            ({k: v for k, v in layer.items() if k != k.lower()},  # exact case
             {k: v for k, v in layer.items() if k == k.lower()})  # any case
            for layer in layers
        ]
        alternatives: dict[str, str] = {}
        for exact, folded in self.layers:
            for key in exact:
                alternatives.setdefault(key, _phrase(key))
            for key in folded:
                alternatives.setdefault(key, f"(?i:{_phrase(key)})")
        ordered = sorted(alternatives, key=len, reverse=True)  # the longest phrase wins
        self.pattern = (re.compile(r"(?<!\w)(?:" + "|".join(alternatives[k] for k in ordered)
                                   + r")(?!\w)") if ordered else None)

    def apply(self, text: str) -> str:
        if self.pattern is None:
            return text
        return self.pattern.sub(self._replacement, text)

    def _replacement(self, m: re.Match[str]) -> str:
        found = " ".join(m.group().split())
        for exact, folded in self.layers:
            if found in exact:
                return exact[found]
            if found.lower() in folded:
                return folded[found.lower()]
        return m.group()


def _phrase(key: str) -> str:
    """An entry as a pattern: its words with any whitespace between them."""
    return r"\s+".join(re.escape(word) for word in key.split())


class Lexicon:
    """The lexicon in use: `apply` replaces entries in one sentence, reloading the file
    first when it changed (looked at no more than once per `interval` seconds)."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        interval: float = CHECK_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Load `path` (None: an empty lexicon). Raises LexiconError."""
        self.path = path
        self.interval = interval
        self._clock = clock
        self._replacers: dict[str, Replacer] = {}
        self.entries = Entries()
        self._stamp: tuple[int, int, int] | None = None
        self._checked = clock()
        if path is not None:
            self.entries = load_lexicon(path)
            try:
                self._stamp = _stamp(path)
            except OSError:  # gone again since it was read: the next look reloads
                self._stamp = None
            _LOGGER.info("lexicon %s: %d entries", path, len(self.entries))

    def apply(self, text: str, language: str | None) -> str:
        if self.path is None:
            return text
        self._reload_if_changed()
        return self.replacer(language or "").apply(text)

    def replacer(self, language: str) -> Replacer:
        key = language.replace("_", "-").lower()
        replacer = self._replacers.get(key)
        if replacer is None:
            parts = key.split("-") if key else []
            tags = ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]  # de-at, de
            layers = [self.entries.languages[t] for t in tags if t in self.entries.languages]
            replacer = self._replacers[key] = Replacer(layers + [self.entries.words])
        return replacer

    def _reload_if_changed(self) -> None:
        now = self._clock()
        if now - self._checked < self.interval or self.path is None:
            return
        self._checked = now
        try:
            stamp = _stamp(self.path)
        except OSError as exc:
            stamp = None
            problem = f"cannot read it: {exc.strerror or exc}"
        if stamp == self._stamp:
            return
        self._stamp = stamp  # a broken file is reported once, not every second
        try:
            if stamp is None:
                raise LexiconError(str(self.path), None, problem)
            entries = load_lexicon(self.path)
        except LexiconError as exc:
            _LOGGER.error("lexicon not reloaded: %s; still using the last good one "
                          "(%d entries)", exc, len(self.entries))
            return
        self.entries = entries
        self._replacers.clear()
        _LOGGER.info("lexicon %s reloaded: %d entries", self.path, len(entries))


def _stamp(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size, st.st_ino
