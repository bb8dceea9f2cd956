"""LoopThread and the blocking wrappers: asyncio code driven from plain threads."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator

import pytest

from panoseti_appliance.loopthread import (
    BlockingWrapper,
    LoopThread,
    blocking,
    blocking_iter,
    blocking_stream,
)

WAIT = 30.0


def loop_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


class Counter:
    """A small asyncio client: a coroutine, a coroutine returning a stream, an async generator."""

    def __init__(self) -> None:
        self.cleaned_up = threading.Event()
        self.closed = False

    async def add(self, a: int, b: int = 1) -> int:
        """Add on the loop."""
        return a + b

    async def numbers(self, upto: int) -> AsyncIterator[int]:
        if upto < 0:
            raise ValueError("upto must not be negative")
        return self.count(upto)

    async def count(self, upto: int) -> AsyncIterator[int]:
        try:
            for n in range(upto):
                yield n
            await asyncio.Event().wait()  # then nothing more, until closed
        finally:
            self.cleaned_up.set()

    async def close(self) -> None:
        self.closed = True


class BlockingCounter(BlockingWrapper[Counter]):
    def __init__(self) -> None:
        super().__init__(Counter(), "counter-loop")

    add = blocking(Counter.add)
    numbers = blocking_stream(Counter.numbers)
    numbers_lazily = blocking_stream(Counter.numbers, lazy=True)
    count = blocking_iter(Counter.count)


def test_run_returns_results_raises_errors_and_refuses_its_own_thread() -> None:
    loop = LoopThread("test-loop")
    try:
        assert loop.run(asyncio.sleep(0, "done")) == "done"
        with pytest.raises(ZeroDivisionError):
            loop.run(asyncio.to_thread(lambda: 1 / 0))

        async def nested() -> None:
            loop.run(asyncio.sleep(0))

        with pytest.raises(RuntimeError, match="would deadlock"):
            loop.run(nested())
    finally:
        loop.close()
    assert not loop_threads("test-loop")


def test_wrappers_keep_arguments_results_and_documentation() -> None:
    with BlockingCounter() as counter:
        assert counter.add(2, b=3) == 5
        assert counter.add.__doc__ == "Add on the loop."
        assert list(inspect.signature(BlockingCounter.add).parameters) == ["self", "a", "b"]
        stream = counter.numbers(3)
        assert [next(stream) for _ in range(3)] == [0, 1, 2]
        stream.close()  # leaving early closes the async generator on the loop
        assert counter._aio.cleaned_up.is_set()
        # The coroutine of an eager stream runs at the call, that of a lazy one at next().
        with pytest.raises(ValueError, match="upto must not be negative"):
            counter.numbers(-1)
        lazy = counter.numbers_lazily(-1)
        with pytest.raises(ValueError, match="upto must not be negative"):
            next(lazy)
    assert counter._aio.closed
    assert not loop_threads("counter-loop")


def test_close_ends_a_stream_another_thread_iterates_and_the_loop_restarts() -> None:
    counter = BlockingCounter()
    both = threading.Event()
    received: list[int] = []

    def consume() -> None:
        for n in counter.count(2):
            received.append(n)
            if n == 1:
                both.set()  # the next one never comes

    consumer = threading.Thread(target=consume)
    consumer.start()
    assert both.wait(WAIT)
    counter.close()
    consumer.join(WAIT)
    assert not consumer.is_alive()
    assert counter._aio.cleaned_up.is_set()
    assert received == [0, 1]
    assert not loop_threads("counter-loop")
    assert counter.add(1) == 2  # used again: a new loop thread
    assert len(loop_threads("counter-loop")) == 1
    counter.close()
    assert not loop_threads("counter-loop")
