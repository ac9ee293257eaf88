"""SSML → plain text for the splitter, as a stream: an incomplete tag waits for its `>`."""

from __future__ import annotations

import re

_SSML_TAG = re.compile(r"<(/?)([A-Za-z][\w:-]*)([^>]*?)(/?)>")
_SSML_ATTR = re.compile(r"([\w:-]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")


class SsmlFilter:
    """SSML → plain text with newlines for paragraph/sentence ends and long breaks, commas
    for short breaks. Streaming: an incomplete tag is held until its `>` arrives."""

    def __init__(self) -> None:
        self._pending = ""
        self._skip_depth = 0  # inside <sub alias=…>: its alias was spoken instead

    def feed(self, text: str, final: bool = False) -> str:
        text = self._pending + text
        self._pending = ""
        out: list[str] = []
        i = 0
        while i < len(text):
            lt = text.find("<", i)
            if lt < 0:
                self._text(out, text[i:])
                break
            self._text(out, text[i:lt])
            if text.startswith("<!--", lt):
                end = text.find("-->", lt)
                if end < 0:
                    self._pending = "" if final else text[lt:]
                    break
                i = end + 3
                continue
            gt = text.find(">", lt)
            if gt < 0:
                self._pending = "" if final else text[lt:]
                break
            self._tag(out, text[lt : gt + 1])
            i = gt + 1
        return "".join(out)

    def _text(self, out: list[str], text: str) -> None:
        if text and not self._skip_depth:
            out.append(text.replace("\n", " ").replace("\r", " "))

    def _tag(self, out: list[str], tag: str) -> None:
        m = _SSML_TAG.fullmatch(tag)
        if not m:
            return
        closing, name, attrs = m.group(1) == "/", m.group(2).lower(), m.group(3)
        values = {a.lower(): v1 or v2 for a, v1, v2 in _SSML_ATTR.findall(attrs)}
        if name == "sub":
            if closing:
                self._skip_depth = max(0, self._skip_depth - 1)
            elif values.get("alias") and not m.group(4):
                out.append(" " + values["alias"] + " ")
                self._skip_depth += 1
            return
        if self._skip_depth:
            return
        if name in ("p", "s", "paragraph", "sentence"):
            out.append("\n")
        elif name == "break":
            out.append("\n" if _is_long_break(values) else ", ")
        elif name in ("speak", "voice"):
            out.append(" ")  # words inside other tags (emphasis, lang...) join their neighbours


def _is_long_break(attrs: dict[str, str]) -> bool:
    if attrs.get("strength", "").lower() in ("strong", "x-strong"):
        return True
    m = re.fullmatch(r"\s*([\d.]+)\s*(ms|s)\s*", attrs.get("time", ""))
    if not m:
        return False
    try:
        ms = float(m.group(1)) * (1000 if m.group(2) == "s" else 1)
    except ValueError:
        return False
    return ms >= 500
