"""A one-line progress bar on stderr (no dependency); silent when not on a terminal."""

from __future__ import annotations

import sys
from typing import TextIO


class Progress:
    def __init__(self, total: int, *, enabled: bool | None = None, stream: TextIO | None = None,
                 width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.total = max(1, total)
        self.done = 0
        self.width = width
        # A bar in a log file or pipe is only noise.
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._label = ""

    def label(self, text: str) -> None:
        self._label = text
        self._draw()

    def advance(self, n: int = 1) -> None:
        self.done = min(self.total, self.done + n)
        self._draw()

    def _draw(self) -> None:
        if not self.enabled:
            return
        filled = self.width * self.done // self.total
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r[{bar}] {self.done}/{self.total} {self._label[:40]:<40}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * (self.width + 56) + "\r")
            self.stream.flush()
