"""Freed memory goes back to the OS once a backend's pool has gone idle."""

from __future__ import annotations

import threading
import time

import pytest

from wyoming_verba.backends import memory
from wyoming_verba.backends.piper.pool import SentencePool

PAGE = 4096


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


@pytest.mark.skipif(memory._TRIM is None, reason="needs glibc's malloc_trim")
def test_release_freed_memory_hands_fragmented_free_pages_back():
    # 100 KB blocks come from malloc's heap (under its mmap threshold). Freeing every other
    # one leaves free holes between live blocks, which glibc keeps resident by itself.
    blocks = [b"\x01" * 100_000 for _ in range(2000)]
    del blocks[::2]
    held = rss_bytes()
    assert memory.release_freed_memory() is True
    assert held - rss_bytes() > 60_000_000  # ~100 MB of holes


def wait_for(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_the_pool_trims_once_per_idle_spell_and_never_while_busy():
    trims: list[float] = []
    pool = SentencePool(2, idle_trim=0.05, trim=lambda: trims.append(time.monotonic()))
    try:
        time.sleep(0.3)
        assert trims == []  # nothing was done yet: nothing to give back
        pool.submit(0.0, lambda: None).result(timeout=5)
        assert wait_for(lambda: len(trims) == 1)
        time.sleep(0.3)
        assert len(trims) == 1  # one trim per idle spell, not one per worker or per wait

        gate = threading.Event()
        running = pool.submit(0.0, gate.wait)
        time.sleep(0.3)  # a long sentence: the pool is not idle while it runs
        assert len(trims) == 1
        gate.set()
        running.result(timeout=5)
        assert wait_for(lambda: len(trims) == 2)
    finally:
        pool.shutdown()
        pool.join(5)
