"""Warm-up and timed runs against one server, and a whole comparison."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .measure import Trace, measure_plain, measure_streaming
from .progress import Progress
from .servers import ServerStartError
from .stats import Summary, summarize


@dataclass(frozen=True)
class BenchConfig:
    texts: tuple[str, ...]
    runs: int = 5  # timed requests per text
    warmup: int = 1  # untimed requests first (model load, caches, connections)
    streaming: bool = False
    chunk_words: int = 3
    chunk_delay: float = 0.1
    voice: str | None = None
    timeout: float = 60.0

    @property
    def requests_per_backend(self) -> int:
        return self.warmup + self.runs * len(self.texts)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {
            "texts": list(self.texts)
        }


@dataclass
class BackendResult:
    name: str
    traces: list[Trace] = field(default_factory=list)
    skipped: str | None = None  # why it was not measured

    @property
    def summary(self) -> Summary:
        return summarize(self.traces)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "skipped": self.skipped,
            "summary": None if self.skipped else self.summary.to_dict(),
            "requests": [t.to_dict() for t in self.traces],
        }


async def measure_once(uri: str, text: str, config: BenchConfig) -> Trace:
    if config.streaming:
        return await measure_streaming(
            uri, text, voice=config.voice, chunk_words=config.chunk_words,
            chunk_delay=config.chunk_delay, time_limit=config.timeout,
        )
    return await measure_plain(uri, text, voice=config.voice, time_limit=config.timeout)


async def run_requests(
    uri: str, config: BenchConfig, progress: Progress | None = None
) -> list[Trace]:
    """`warmup` untimed requests, then each text `runs` times (interleaved, so a slow
    drift affects every text alike). Requests run one at a time, like one HA user."""
    for i in range(config.warmup):
        await measure_once(uri, config.texts[i % len(config.texts)], config)
        if progress:
            progress.advance()
    traces = []
    for _ in range(config.runs):
        for text in config.texts:
            traces.append(await measure_once(uri, text, config))
            if progress:
                progress.advance()
    return traces


ServerFactory = Callable[[str], contextlib.AbstractAsyncContextManager[str]]


async def run_backends(
    names: Sequence[str], start: ServerFactory, config: BenchConfig,
    progress: Progress | None = None,
) -> AsyncIterator[BackendResult]:
    """For each backend: bring up a server with `start(name)`, measure, tear it down.
    One after another, so backends never compete for the CPU/GPU."""
    for name in names:
        if progress:
            progress.label(f"{name}: starting")
        try:
            async with start(name) as uri:
                if progress:
                    progress.label(name)
                traces = await run_requests(uri, config, progress)
        except ServerStartError as exc:
            if progress:
                progress.advance(config.requests_per_backend)
            yield BackendResult(name, skipped=str(exc))
            continue
        yield BackendResult(name, traces)
