"""A private asyncio loop on a thread: how the blocking clients run the asyncio ones.

`DaqDataClient` and `UbloxControlClient` are the asyncio clients driven from ordinary threads:
each call is submitted to the wrapper's own loop and waited for, and a stream's async generator
becomes a plain generator. One implementation of the protocol logic then serves both kinds of
caller. Waiting for a result can be interrupted (Ctrl-C raises KeyboardInterrupt in the waiting
thread), and leaving a stream early in any way closes it on the loop, cancelling its calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Generator
from concurrent.futures import CancelledError
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, Self, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
C = TypeVar("C", bound="_AioClient")

#: How long closing a stream or the loop may take before the caller moves on.
CLOSE_TIMEOUT_SECONDS = 5.0


class LoopThread:
    """An event loop running on a daemon thread, started at first use and stopped by close()."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pulls: set[_Pull[Any]] = set()  # streams being iterated, closed by close()

    @property
    def running(self) -> bool:
        """Whether the loop thread has been started (and not closed since)."""
        return self._loop is not None

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                started = threading.Event()
                thread = threading.Thread(
                    target=self._serve, args=(loop, started), name=self.name, daemon=True
                )
                thread.start()
                started.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def run(self, coro: Coroutine[Any, Any, R], timeout: float | None = None) -> R:
        """Run `coro` on the loop and wait for its result; interrupting the wait cancels it."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError(f"{self.name}: a blocking call from its own loop would deadlock")
        future = asyncio.run_coroutine_threadsafe(coro, self._running_loop())
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    def iterate(self, agen: AsyncIterator[T]) -> Generator[T, None, None]:
        """`agen` as a plain generator; closing it (or an error) closes `agen` on the loop."""
        pull = _Pull(agen)
        self._pulls.add(pull)
        try:
            while not pull.closed:
                try:
                    item = self.run(pull.next())
                except StopAsyncIteration:
                    return
                except CancelledError:  # the loop was closed under the stream
                    return
                yield item
        finally:
            self._pulls.discard(pull)
            if self.running and not pull.closed:
                with contextlib.suppress(TimeoutError):
                    self.run(pull.close(), CLOSE_TIMEOUT_SECONDS)

    def close(self) -> None:
        """Close the streams still open, cancel what else runs on the loop, stop it, join it."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
            pulls, self._pulls = list(self._pulls), set()
        if loop is None or thread is None:
            return
        if threading.current_thread() is thread:  # dropped by code running on the loop itself
            loop.call_soon(loop.stop)
            return
        future = asyncio.run_coroutine_threadsafe(_wind_down(pulls), loop)
        try:
            with contextlib.suppress(TimeoutError):  # stopping the loop ends what still runs
                future.result(CLOSE_TIMEOUT_SECONDS)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(CLOSE_TIMEOUT_SECONDS)


class _Pull(Generic[T]):
    """One `__anext__` at a time on the loop, remembering the task so close() can end it."""

    def __init__(self, agen: AsyncIterator[T]) -> None:
        self.agen = agen
        self.task: asyncio.Task[Any] | None = None
        self.closed = False

    async def next(self) -> T:
        self.task = asyncio.current_task()
        return await anext(self.agen)

    async def close(self) -> None:
        self.closed = True
        task = self.task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})  # the generator's own cleanup runs before aclose()
        aclose = getattr(self.agen, "aclose", None)
        if aclose is not None:
            await aclose()


async def _wind_down(pulls: list[_Pull[Any]]) -> None:
    """Close open streams one by one (each closes the generators it wraps), then cancel the rest.

    Left to the loop's own shutdown, nested generators would be closed all at once, each
    tripping over the one it wraps.
    """
    for pull in pulls:
        with contextlib.suppress(Exception):  # the loop stops whatever a stream's cleanup says
            await pull.close()
    current = asyncio.current_task()
    others = [t for t in asyncio.all_tasks() if t is not current]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


class _AioClient(Protocol):
    async def close(self) -> None: ...


class BlockingWrapper(Generic[C]):
    """Base of a blocking client: the asyncio client `_aio`, run on a private loop thread."""

    def __init__(self, aio: C, name: str) -> None:
        self._aio = aio
        self._loop = LoopThread(name)
        # A client dropped without close() still stops its thread (at the latest at exit).
        weakref.finalize(self, self._loop.close)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the asyncio client (its calls end with CANCELLED) and stop the loop thread.

        The client may be used again afterwards: a new loop thread starts at the next call.
        """
        try:
            if self._loop.running:
                self._loop.run(self._aio.close(), CLOSE_TIMEOUT_SECONDS)
        finally:
            self._loop.close()


def blocking(
    method: Callable[Concatenate[C, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[BlockingWrapper[C], P], R]:
    """The blocking twin of an asyncio client's coroutine method: same arguments and result."""

    def call(self: BlockingWrapper[C], /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._loop.run(method(self._aio, *args, **kwargs))

    functools.update_wrapper(call, method)
    return call


def blocking_stream(
    method: Callable[Concatenate[C, P], Coroutine[Any, Any, AsyncIterator[T]]],
    *,
    lazy: bool = False,
) -> Callable[Concatenate[BlockingWrapper[C], P], Generator[T, None, None]]:
    """The blocking twin of a coroutine method that returns a stream: a plain generator.

    The coroutine (checking the hosts, say) runs at the call, or at the first `next()` when
    `lazy`, so that its errors come where callers of the method have always seen them.
    """

    def call(
        self: BlockingWrapper[C], /, *args: P.args, **kwargs: P.kwargs
    ) -> Generator[T, None, None]:
        return self._loop.iterate(self._loop.run(method(self._aio, *args, **kwargs)))

    def call_lazily(
        self: BlockingWrapper[C], /, *args: P.args, **kwargs: P.kwargs
    ) -> Generator[T, None, None]:
        yield from call(self, *args, **kwargs)

    chosen = call_lazily if lazy else call
    functools.update_wrapper(chosen, method)
    return chosen


def blocking_iter(
    method: Callable[Concatenate[C, P], AsyncIterator[T]],
) -> Callable[Concatenate[BlockingWrapper[C], P], Generator[T, None, None]]:
    """The blocking twin of an async generator method: a plain generator."""

    def call(
        self: BlockingWrapper[C], /, *args: P.args, **kwargs: P.kwargs
    ) -> Generator[T, None, None]:
        return self._loop.iterate(method(self._aio, *args, **kwargs))

    functools.update_wrapper(call, method)
    return call
