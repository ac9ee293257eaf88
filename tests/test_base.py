"""The shared helpers of the backend interface."""

import asyncio
import threading

import pytest

from wyoming_verba.backends.base import CancelToken, SynthesisCancelled
from wyoming_verba.backends.threads import iterate_in_thread, stream_from_thread


async def test_iterate_in_thread_streams_items_off_the_loop():
    loop_thread = threading.get_ident()
    seen = []

    def produce():
        for i in range(5):
            seen.append(threading.get_ident())
            yield i

    items = [i async for i in iterate_in_thread(produce, CancelToken())]
    assert items == [0, 1, 2, 3, 4]
    assert loop_thread not in seen


async def test_iterate_in_thread_reraises_the_generators_error():
    def produce():
        yield 1
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):
        [i async for i in iterate_in_thread(produce, CancelToken())]


async def test_cancel_is_an_error_not_a_short_sentence():
    cancel = CancelToken()

    def produce():
        for i in range(1000):
            if i == 3:
                cancel.cancel()
            yield i

    got = []
    with pytest.raises(SynthesisCancelled):
        async for item in iterate_in_thread(produce, cancel):
            got.append(item)
    assert len(got) < 1000


async def test_wait_cancellable_result_timeout_and_cancel():
    import asyncio

    from wyoming_verba.backends.threads import wait_cancellable

    done = asyncio.ensure_future(asyncio.sleep(0.01, result="ok"))
    assert await wait_cancellable(done, 1.0, CancelToken()) == "ok"
    slow = asyncio.ensure_future(asyncio.sleep(10))
    with pytest.raises(TimeoutError):
        await wait_cancellable(slow, 0.1, CancelToken())
    cancel = CancelToken()
    asyncio.get_running_loop().call_later(0.05, cancel.cancel)
    with pytest.raises(SynthesisCancelled):
        await wait_cancellable(slow, 10.0, cancel)
    slow.cancel()


async def test_a_slow_consumer_holds_the_producer_back():
    produced = []

    def produce():
        for i in range(100):
            produced.append(i)
            yield i

    stream = iterate_in_thread(produce, CancelToken(), max_buffered=4)
    first = await anext(stream)
    await asyncio.sleep(0.3)  # the producer may run ahead by the buffer only
    assert first == 0 and len(produced) <= 6
    rest = [i async for i in stream]
    assert rest == list(range(1, 100))


async def test_items_made_while_the_consumer_was_busy_arrive_in_order():
    """A producer that runs ahead of a busy loop: nothing is lost, reordered or held
    back waiting for more."""
    def produce(emit, should_stop):
        for i in range(40):
            emit(i)

    got = []
    async for item in stream_from_thread(produce, CancelToken()):
        got.append(item)
        await asyncio.sleep(0.002)  # a busy loop: the producer runs ahead meanwhile
    assert got == list(range(40))
