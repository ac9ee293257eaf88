"""The results as a readable (Markdown) table or as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .runner import BackendResult, BenchConfig


def _s(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _n(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _short(reason: str, limit: int = 120) -> str:
    """Skip reasons can quote whole exceptions; the JSON keeps them in full."""
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"


def table(results: Sequence[BackendResult], config: BenchConfig) -> str:
    """One row per measured backend (times in seconds), then the skipped ones."""
    streaming = config.streaming
    head = ["backend", "requests", "errors", "first audio p50", "first audio p90",
            "total p50", "total p90"]
    if streaming:
        head.append("after last text p50")
    head += ["underrun p50", "underrun p99", "audio s", "RTF", "chunks", "bytes"]
    rows = []
    for r in results:
        if r.skipped:
            continue
        s = r.summary
        row = [r.name, str(s.requests), str(s.errors), _s(s.first_audio_p50),
               _s(s.first_audio_p90), _s(s.total_p50), _s(s.total_p90)]
        if streaming:
            row.append(_s(s.after_text_p50))
        row += [_s(s.underrun_p50), _s(s.underrun_p99), _s(s.audio_s, 2), _s(s.rtf),
                _n(s.chunks), _n(s.bytes)]
        rows.append(row)
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        padded = [c.ljust(w) if i == 0 else c.rjust(w)
                  for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" if i else ":" + "-" * (w + 1)
                          for i, w in enumerate(widths)) + "|"
    out = [line(head), rule, *(line(row) for row in rows)]
    out += [f"skipped {r.name}: {_short(r.skipped)}" for r in results if r.skipped]
    return "\n".join(out)


def describe_config(config: BenchConfig) -> str:
    mode = (f"streaming, {config.chunk_words} words every {config.chunk_delay:g} s"
            if config.streaming else "plain synthesize")
    return (f"{mode}; {len(config.texts)} text(s) x {config.runs} runs, "
            f"{config.warmup} warm-up; times in seconds from the first text sent")


def to_json(results: Sequence[BackendResult], config: BenchConfig) -> str:
    data: dict[str, Any] = {
        "config": config.to_dict(),
        "backends": [r.to_dict() for r in results],
    }
    return json.dumps(data, indent=2)
