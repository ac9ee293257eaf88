"""The threads the audio pool and espeak-ng's engines run on (`workers.Workers`)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from wyoming_verba.workers import Workers


async def test_run_returns_the_result_or_raises_the_jobs_own_exception():
    workers = Workers(2, "test")
    try:
        assert await workers.run(lambda a, b: a + b, 2, 3) == 5
        assert (await workers.run(threading.current_thread)).name.startswith("test_")

        def fail() -> None:
            raise KeyError("no such thing")

        with pytest.raises(KeyError, match="no such thing"):
            await workers.run(fail)
    finally:
        workers.shutdown()


async def test_at_most_its_threads_run_at_once_and_all_of_them_do():
    workers = Workers(2, "test")
    running, peak, lock = 0, 0, threading.Lock()

    def job() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    try:
        await asyncio.gather(*(workers.run(job) for _ in range(6)))
    finally:
        workers.shutdown()
    assert peak == 2


async def test_a_cancelled_wait_lets_the_job_finish_and_nothing_complains():
    """As with run_in_executor: the job it already handed over runs to its end, and its
    result, arriving for a cancelled future, is dropped without an InvalidStateError."""
    loop = asyncio.get_running_loop()
    complaints: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: complaints.append(context))
    workers = Workers(1, "test")
    started, finished = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        time.sleep(0.1)
        finished.set()
        return "late"

    try:
        task = asyncio.create_task(workers.run(slow))
        await asyncio.to_thread(started.wait, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.to_thread(finished.wait, 5)
        assert await workers.run(lambda: "next") == "next"  # settled after the late one
    finally:
        workers.shutdown()
        loop.set_exception_handler(None)
    assert complaints == []


async def test_a_fire_and_forget_job_that_fails_is_logged_and_the_thread_goes_on(caplog):
    workers = Workers(1, "test")
    try:
        with caplog.at_level(logging.ERROR, logger="wyoming_verba.workers"):
            workers.submit(lambda: 1 / 0)
            assert await workers.run(lambda: "still here") == "still here"
    finally:
        workers.shutdown()
    assert "test: a job failed" in caplog.text and "ZeroDivisionError" in caplog.text


async def test_shutdown_finishes_what_was_queued_then_ends_the_threads():
    workers = Workers(2, "test")
    done: list[int] = []
    gate = threading.Event()
    workers.submit(gate.wait, 5)
    for i in range(4):
        workers.submit(done.append, i)
    threads = [t for t in threading.enumerate() if t.name.startswith("test_")]
    assert len(threads) == 2
    workers.shutdown()
    gate.set()
    for thread in threads:
        thread.join(5)
        assert not thread.is_alive()
    assert sorted(done) == [0, 1, 2, 3]
    with pytest.raises(RuntimeError, match="shut down"):
        workers.submit(print)


def test_a_result_for_a_closed_loop_is_dropped_quietly(caplog):
    """A job that outlives the event loop (shutdown's grace ended) must not fail in its
    thread when it hands its result back."""
    workers = Workers(1, "test")
    release, handed = threading.Event(), threading.Event()

    async def start() -> None:
        asyncio.ensure_future(workers.run(release.wait, 5))
        await asyncio.sleep(0)

    loop = asyncio.new_event_loop()
    loop.run_until_complete(start())
    loop.close()
    workers.submit(handed.set)
    try:
        with caplog.at_level(logging.ERROR, logger="wyoming_verba.workers"):
            release.set()
            assert handed.wait(5)
    finally:
        workers.shutdown()
    assert "a job failed" not in caplog.text
