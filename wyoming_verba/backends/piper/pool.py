"""The sentence pool: Piper's worker threads, which always take the queued sentence
with the earliest deadline, so a new reply's first sentence overtakes the later
sentences of replies whose clients still have audio to play."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from ..base import BackendUnavailable
from ..memory import release_freed_memory

MAX_DEFER_S = 2.0  # longest a later sentence yields to other replies' first sentences
IDLE_TRIM_S = 2.0  # no sentence for this long after some work: free memory goes back


def reply_deadline(reply: dict[str, float]) -> float:
    """When this reply's client runs out of audio if playback began when the reply did:
    now for a first sentence, later for a reply that already has seconds of audio queued
    (capped, so a deferred sentence is never near the chain's sentence timeout)."""
    now = time.monotonic()
    return min(reply["start"] + reply["audio"], now + MAX_DEFER_S)


class SentencePool:
    """Worker threads that always take the queued sentence with the earliest deadline
    (ties: first come, first served). A reply's first sentence is due at once, so it
    overtakes the later sentences of replies whose clients still have audio to play.
    When it has been idle for `idle_trim` seconds after some work, one worker calls `trim`:
    the backend hands the memory those sentences used back to the OS."""

    def __init__(self, workers: int, idle_trim: float = IDLE_TRIM_S,
                 trim: Callable[[], object] = release_freed_memory) -> None:
        self._queue: list[tuple[float, int, Future, Callable[[], Any]]] = []
        self._order = itertools.count()
        self._ready = threading.Condition()
        self._closed = False
        self._idle_trim = idle_trim
        self._trim = trim
        self._busy = 0  # workers inside a job
        self._worked = False  # a job ended since the last trim
        self._threads = [
            threading.Thread(target=self._work, name=f"piper-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, deadline: float, fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        with self._ready:
            if self._closed:
                raise BackendUnavailable("Piper is stopping", backend="piper")
            heapq.heappush(self._queue, (deadline, next(self._order), future,
                                         lambda: fn(*args)))
            self._ready.notify()
        return future

    def shutdown(self) -> None:
        with self._ready:
            self._closed = True
            queued, self._queue = self._queue, []
            self._ready.notify_all()
        for _due, _n, future, _job in queued:
            future.cancel()

    def join(self, timeout: float) -> bool:
        """Wait for the sentences being synthesized to finish; True when all workers
        ended. A worker killed inside onnxruntime at interpreter exit aborts the process."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def crowded(self) -> bool:
        """Called from inside a job: another sentence is running or waiting, so the
        cores are shared and this one should not spread over all of them."""
        return self._busy > 1 or bool(self._queue)

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closed:
                    if self._ready.wait(self._idle_trim) or not self._idle():
                        continue
                    self._worked = False  # this worker trims; the others go on waiting
                    self._ready.release()  # trimming takes milliseconds: submit() must not wait
                    try:
                        self._trim()
                    finally:
                        self._ready.acquire()
                if self._closed:
                    return
                _due, _n, future, job = heapq.heappop(self._queue)
                self._busy += 1
            ran, result, error = False, None, None
            try:
                if future.set_running_or_notify_cancel():  # else the request went away
                    ran = True
                    try:
                        result = job()
                    except BaseException as exc:
                        error = exc
            finally:
                # No longer busy before the caller hears of it: its next sentence, started
                # at once, must not count this one as still running (crowded()).
                with self._ready:
                    self._busy -= 1
                    self._worked = True
            if error is not None:
                future.set_exception(error)
            elif ran:
                future.set_result(result)

    def _idle(self) -> bool:
        """Work was done since the last trim, and none is queued or running now."""
        return self._worked and not self._queue and not self._busy and not self._closed


