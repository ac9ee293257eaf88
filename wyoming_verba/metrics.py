"""One log line per request, the recent requests and a first-audio histogram (for the
web page), and optional Prometheus metrics (`--metrics-port`)."""

from __future__ import annotations

import bisect
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

_LOGGER = logging.getLogger("wyoming_verba.request")


@dataclass
class RequestStats:
    request_id: str
    streaming: bool = False
    started: float = field(default_factory=time.perf_counter)
    first_audio: float | None = None
    audio_seconds: float = 0.0
    sentences: int = 0
    chars: int = 0
    backends: list[str] = field(default_factory=list)
    failovers: int = 0
    hedges: int = 0  # sentences another backend started because the first was late
    cache_hits: int = 0
    outcome: str = "ok"
    front: str = "wyoming"  # which server took the request: wyoming or http

    def audio(self, seconds: float) -> None:
        if self.first_audio is None:
            self.first_audio = time.perf_counter() - self.started
        self.audio_seconds += seconds

    def spoken_by(self, backend: str) -> None:
        if backend not in self.backends:
            self.backends.append(backend)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def rtf(self) -> float | None:
        return self.elapsed / self.audio_seconds if self.audio_seconds else None

    def log_line(self) -> str:
        first = f"{self.first_audio * 1000:.0f}ms" if self.first_audio is not None else "-"
        rtf = f"{self.rtf:.3f}" if self.rtf is not None else "-"
        return (
            f"request={self.request_id} outcome={self.outcome} "
            f"mode={'stream' if self.streaming else 'plain'} "
            f"backends={','.join(self.backends) or '-'} first_audio={first} "
            f"audio={self.audio_seconds:.2f}s total={self.elapsed:.2f}s rtf={rtf} "
            f"sentences={self.sentences} chars={self.chars} failovers={self.failovers} "
            f"hedges={self.hedges} "
            f"cache_hits={self.cache_hits}" + (f" front={self.front}"
                                               if self.front != "wyoming" else "")
        )


FIRST_AUDIO_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10)  # seconds


class History:
    """The last requests and a first-audio histogram since start, whichever front
    served them: what the web page shows (Prometheus may be off)."""

    def __init__(self, keep: int = 50) -> None:
        self.recent: deque[dict[str, Any]] = deque(maxlen=keep)
        self.buckets = FIRST_AUDIO_BUCKETS
        self.counts = [0] * (len(self.buckets) + 1)  # the last counts everything slower

    def add(self, stats: RequestStats) -> None:
        first = stats.first_audio
        if first is not None:
            self.counts[bisect.bisect_left(self.buckets, first)] += 1
        self.recent.append({
            "id": stats.request_id,
            "time": time.time(),
            "front": stats.front,
            "mode": "stream" if stats.streaming else "plain",
            "outcome": stats.outcome,
            "first_audio_ms": round(first * 1000, 1) if first is not None else None,
            "audio_s": round(stats.audio_seconds, 3),
            "total_s": round(stats.elapsed, 3),
            "backends": list(stats.backends),
            "failovers": stats.failovers,
            "hedges": stats.hedges,
            "sentences": stats.sentences,
            "chars": stats.chars,
            "cache_hits": stats.cache_hits,
        })


class Metrics:
    """Prometheus counters and histograms; a no-op when disabled or not installed."""

    def __init__(self, port: int | None, host: str = "0.0.0.0") -> None:
        self.enabled = False
        self._server: Any = None
        self.history = History()
        if port is None:
            return
        try:
            import prometheus_client as prom
        except ImportError:
            _LOGGER.error(
                "--metrics-port needs prometheus-client: pip install 'wyoming-verba[metrics]'"
            )
            return
        self.registry = prom.CollectorRegistry()
        r = self.registry
        self.requests = prom.Counter("verba_requests_total", "Replies by outcome",
                                     ["outcome", "mode"], registry=r)
        self.sentences = prom.Counter("verba_sentences_total", "Sentences spoken, by backend",
                                      ["backend"], registry=r)
        self.failovers = prom.Counter("verba_failovers_total", "Backend failures inside a reply",
                                      ["backend"], registry=r)
        self.audio_seconds = prom.Counter("verba_audio_seconds_total", "Audio produced",
                                          registry=r)
        self.cache_hits = prom.Counter("verba_cache_hits_total", "Sentences served from the cache",
                                       registry=r)
        self.first_audio = prom.Histogram(
            "verba_first_audio_seconds", "Time from request to first audio", registry=r,
            buckets=FIRST_AUDIO_BUCKETS)
        self.rtf = prom.Histogram("verba_real_time_factor", "Synthesis time / audio time",
                                  registry=r, buckets=(0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2))
        self.connections = prom.Gauge("verba_connections", "Open client connections", registry=r)
        self.backend_up = prom.Gauge("verba_backend_up", "1 if the backend is usable now",
                                     ["backend"], registry=r)
        self._server, _thread = prom.start_http_server(port, addr=host, registry=r)
        self.enabled = True
        _LOGGER.info("Prometheus metrics on http://%s:%d/metrics", host, port)

    def record(self, stats: RequestStats) -> None:
        _LOGGER.info(stats.log_line())
        self.history.add(stats)
        if not self.enabled:
            return
        mode = "http" if stats.front == "http" else "stream" if stats.streaming else "plain"
        self.requests.labels(stats.outcome, mode).inc()
        self.audio_seconds.inc(stats.audio_seconds)
        self.cache_hits.inc(stats.cache_hits)
        if stats.first_audio is not None:
            self.first_audio.observe(stats.first_audio)
        if stats.rtf is not None:
            self.rtf.observe(stats.rtf)

    def sentence(self, backend: str, failed: list[tuple[str, str]]) -> None:
        if self.enabled:
            self.sentences.labels(backend).inc()
            for name, _ in failed:
                self.failovers.labels(name).inc()

    def connection(self, delta: int) -> None:
        if self.enabled:
            self.connections.inc(delta)

    def backends(self, states: dict[str, bool]) -> None:
        if self.enabled:
            for name, up in states.items():
                self.backend_up.labels(name).set(1 if up else 0)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
