"""Running blocking synthesis off the event loop, and waiting with cancellation.

Every backend whose engine blocks (espeak-ng's C library, CSM on the GPU) streams its
output through `stream_from_thread`; network backends wait with `wait_cancellable`."""

from __future__ import annotations

import asyncio
import os
import threading
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing
from typing import Any, Protocol, TypeVar

from .base import CancelToken

CANCEL_POLL_S = 0.05  # how often a wait looks at a CancelToken (a thread event)


async def wait_cancellable(task: asyncio.Future, limit: float, cancel: CancelToken) -> Any:
    """`task`'s result within `limit` seconds, looking at `cancel` meanwhile. Raises
    TimeoutError or SynthesisCancelled; the task itself is left to the caller."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not task.done():
        cancel.raise_if_cancelled()
        left = deadline - loop.time()
        if left <= 0:
            raise TimeoutError
        await asyncio.wait({task}, timeout=min(left, CANCEL_POLL_S))
    return task.result()


def cpu_count() -> int:
    """Cores this process may run on (its affinity, where the OS has one): how many
    sentences a CPU backend can usefully run at once."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


T = TypeVar("T")
_DONE = object()


class Submitter(Protocol):
    """Runs a job on another thread without a result to wait for: a ThreadPoolExecutor,
    or `workers.Workers` (espeak-ng's engine threads)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> object: ...


async def stream_from_thread(
    produce: Callable[[Callable[[T], None], Callable[[], bool]], None],
    cancel: CancelToken,
    executor: Submitter | None = None,
    max_buffered: int = 64,
) -> AsyncGenerator[T, None]:
    """Run the blocking `produce(emit, should_stop)` in `executor` and yield what it
    emits on the event loop as it is produced. `should_stop()` turns true when `cancel`
    is set or the consumer went away; a cancelled stream raises SynthesisCancelled (cut-off
    audio is not a finished sentence); exceptions from `produce` are re-raised here.

    Items emitted while the loop was busy are taken together: one loop wake-up, not one
    per item. A producer far faster than real time (espeak-ng) does better still by
    emitting fewer, larger items.

    Backends that must never run two syntheses at once give a single-thread executor,
    which also serialises a late-finishing producer with the next request."""
    loop = asyncio.get_running_loop()
    pending: deque[Any] = deque()  # emitted, not yet taken by the consumer
    lock = threading.Lock()
    woken = False  # a wake-up for the consumer is already on its way
    ready = asyncio.Event()
    space = threading.Semaphore(max_buffered)  # bounds what waits for the consumer
    stop = threading.Event()

    def should_stop() -> bool:
        return stop.is_set() or cancel.cancelled

    def hand_over(item: Any) -> None:
        nonlocal woken
        with lock:
            pending.append(item)
            if woken:
                return
            woken = True
        try:
            loop.call_soon_threadsafe(ready.set)
        except RuntimeError:  # the loop closed while we were producing
            stop.set()

    def put(item: Any) -> None:
        # Blocks the producer (not the loop) while the consumer is behind.
        while not space.acquire(timeout=0.1):
            if stop.is_set():
                return
        hand_over(item)

    def work() -> None:
        try:
            if not should_stop():  # queued behind another job, maybe long gone
                produce(put, should_stop)
        except BaseException as exc:  # handed to the consumer
            hand_over(exc)
        finally:
            hand_over(_DONE)

    def take() -> list[Any]:
        nonlocal woken
        with lock:
            ready.clear()
            items = list(pending)
            pending.clear()
            woken = False
        return items

    if executor is None:
        loop.run_in_executor(None, work)
    else:  # nobody awaits `work` (it reports through hand_over): no future on the loop
        executor.submit(work)
    try:
        while True:
            await ready.wait()
            items = take()
            end: Any = None
            for item in items:
                if item is _DONE or isinstance(item, BaseException):
                    end = item
                    break
                space.release()
                yield item
            if isinstance(end, BaseException):
                raise end
            if end is _DONE:
                break
        cancel.raise_if_cancelled()
    finally:
        stop.set()  # the producer sees it at its next step and ends


async def iterate_in_thread(
    make_iterator: Callable[[], Iterator[T]],
    cancel: CancelToken,
    executor: Submitter | None = None,
    max_buffered: int = 64,
) -> AsyncGenerator[T, None]:
    """`stream_from_thread` for a blocking generator: yields its items as produced."""

    def produce(emit: Callable[[T], None], should_stop: Callable[[], bool]) -> None:
        for item in make_iterator():
            if should_stop():
                break
            emit(item)

    async with aclosing(stream_from_thread(produce, cancel, executor, max_buffered)) as items:
        async for item in items:
            yield item
