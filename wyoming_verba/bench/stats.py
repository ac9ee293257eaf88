"""Percentiles and the per-backend summary of many timed requests."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .measure import Trace


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class Summary:
    requests: int  # timed requests (warm-ups excluded)
    errors: int
    first_audio_p50: float | None
    first_audio_p90: float | None
    total_p50: float | None
    total_p90: float | None
    after_text_p50: float | None  # streaming: wait after the last text was sent
    underrun_p50: float | None  # silence a real-time player inserts inside a reply
    underrun_p99: float | None
    audio_s: float | None  # mean audio duration per request
    rtf: float | None  # all requests' total time / all their audio
    chunks: float | None  # mean audio-chunk events per request
    bytes: float | None  # mean audio bytes per request

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(traces: Sequence[Trace]) -> Summary:
    """Latency figures over the successful requests; failures are only counted."""
    ok = [t for t in traces if t.ok]

    def p(values: list[float | None], q: float) -> float | None:
        return percentile([v for v in values if v is not None], q)

    first = [t.first_audio_s for t in ok]
    total = [t.done_s for t in ok]
    return Summary(
        requests=len(traces),
        errors=len(traces) - len(ok),
        first_audio_p50=p(first, 50),
        first_audio_p90=p(first, 90),
        total_p50=p(total, 50),
        total_p90=p(total, 90),
        after_text_p50=p([t.after_text_s for t in ok], 50),
        underrun_p50=p([t.underrun_s for t in ok], 50),
        underrun_p99=p([t.underrun_s for t in ok], 99),
        audio_s=mean([t.audio_s for t in ok]),
        rtf=sum(v for v in total if v is not None) / audio
        if (audio := sum(t.audio_s for t in ok)) else None,
        chunks=mean([float(len(t.chunks)) for t in ok]),
        bytes=mean([float(t.audio_bytes) for t in ok]),
    )
