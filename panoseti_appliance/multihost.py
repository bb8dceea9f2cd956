"""The asyncio core of every multi-host stream of the clients: open, merge, retry, stop.

A DaqData client reads StreamImages from every DAQ node and a UbloxControl client reads
CaptureUblox from every receiver's daemon. Both open one call per host and read each host in its
own task (so a slow or silent host never holds the others up), merge what arrives into one
bounded queue (a full queue makes the readers wait, and gRPC flow control then paces the
servers), re-open a host's call after an end their rules call retryable, waiting as their
`RetryPolicy` says, end once every host has ended, raise the first fatal error after cancelling
the other calls, and stop when their stop event is set. What differs between them (the call, the
end rules, what an item looks like, what a re-subscription announces) comes in as functions.
"""

from __future__ import annotations

import asyncio
import enum
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, Self, TypeVar

import grpc

from panoseti_appliance.retry import RetryPolicy

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
T = TypeVar("T")

#: How often a `threading.Event` given as stop event is looked at (an asyncio.Event is awaited);
#: docs/clients.md promises at least every 0.5 s.
STOP_POLL_SECONDS = 0.25

#: Either kind of event ends a stream: the blocking clients hand down their `threading.Event`.
StopEvent = asyncio.Event | threading.Event


class Verdict(enum.Enum):
    """What becomes of a host whose call ended."""

    END = "end"  # the host has finished; the stream carries on with the others
    RETRY = "retry"  # open the same call again after the policy's delay
    RAISE = "raise"  # the call's error ends the whole stream and reaches the consumer


@dataclass(frozen=True, slots=True)
class CallEnd:
    """How one call of one host ended: its status, and the error unless it ended OK."""

    code: grpc.StatusCode
    details: str
    error: grpc.RpcError | None = None


@dataclass(slots=True)
class HostState:
    """What the merge knows about one host; the caller may read it while the stream runs."""

    host: str
    #: The current call has delivered an item and is still open.
    connected: bool = False
    #: Calls in a row that ended and were retried without delivering an item in between.
    attempts: int = 0
    #: Items this host has delivered since the stream started.
    received: int = 0
    #: How the host's latest call ended (None while the first one runs).
    last_end: CallEnd | None = None
    #: The host's reader has finished: ended, failed, or stopped with the stream.
    ended: bool = False


class StreamCall(Protocol[R_co]):
    """A server-streaming grpc.aio call, as far as the merge uses it."""

    def __aiter__(self) -> AsyncIterator[R_co]: ...

    def cancel(self) -> bool: ...

    async def details(self) -> str | None: ...


#: `(host, how its call ended, its state) -> what to do`; may record the end as a side effect.
Judge = Callable[[str, CallEnd, HostState], Verdict]


@dataclass(frozen=True, slots=True)
class _Ended:
    host: str


@dataclass(frozen=True, slots=True)
class _Failed:
    host: str
    error: BaseException


class MultiHostStream(Generic[R, T]):
    """One merged stream over `hosts`: `open_call(host)` is that host's call.

    `convert(host, response)` makes the item the consumer gets; `judge` decides what an ended
    call means; `on_retry(host, end, delay)` runs before each wait and may return an item to
    announce it. An error raised by `convert` or `open_call` ends the stream like a RAISE.
    """

    def __init__(
        self,
        hosts: Sequence[str],
        open_call: Callable[[str], StreamCall[R]],
        *,
        convert: Callable[[str, R], T],
        judge: Judge,
        policy: RetryPolicy,
        queue_size: int,
        on_retry: Callable[[str, CallEnd, float], T | None] | None = None,
    ) -> None:
        self.states = {host: HostState(host) for host in hosts}
        self._open = open_call
        self._convert = convert
        self._judge = judge
        self._policy = policy
        self._on_retry = on_retry
        self._queue: asyncio.Queue[T | _Ended | _Failed] = asyncio.Queue(maxsize=queue_size)

    async def items(self, stop: StopEvent | None = None) -> AsyncGenerator[T, None]:
        """The merged items, until every host has ended, an error is raised or `stop` is set.

        Leaving early (stop, error, `aclose()`, cancellation) cancels every host's call.
        """
        readers = [asyncio.create_task(self._read(h), name=f"stream {h}") for h in self.states]
        getter: asyncio.Future[T | _Ended | _Failed] | None = None
        stopper = asyncio.ensure_future(stop.wait()) if isinstance(stop, asyncio.Event) else None
        poll = STOP_POLL_SECONDS if isinstance(stop, threading.Event) else None
        remaining = len(readers)
        try:
            while remaining:
                if stop is not None and stop.is_set():
                    return
                if getter is None and not self._queue.empty():
                    entry = self._queue.get_nowait()
                else:
                    getter = getter or asyncio.ensure_future(self._queue.get())
                    waits: set[asyncio.Future[Any]] = (
                        {getter} if stopper is None else {getter, stopper}
                    )
                    await asyncio.wait(waits, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
                    if not getter.done():
                        continue
                    entry, getter = getter.result(), None
                if isinstance(entry, _Ended):
                    remaining -= 1
                elif isinstance(entry, _Failed):
                    raise entry.error
                else:
                    yield entry
        finally:
            waiters = [w for w in (getter, stopper) if w is not None]
            for task in [*readers, *waiters]:
                task.cancel()
            await asyncio.gather(*readers, *waiters, return_exceptions=True)

    async def _read(self, host: str) -> None:
        """One host's reader: its calls one after another, as long as its ends are retried."""
        state = self.states[host]
        try:
            while True:
                end = await self._call_once(host, state)
                state.last_end = end
                verdict = self._judge(host, end, state)
                if verdict is Verdict.RETRY:
                    state.attempts += 1
                    if self._policy.exhausted(state.attempts):
                        verdict = Verdict.RAISE
                if verdict is Verdict.RAISE and end.error is not None:
                    await self._queue.put(_Failed(host, end.error))
                    return
                if verdict is not Verdict.RETRY:
                    await self._queue.put(_Ended(host))
                    return
                delay = self._policy.next_delay(state.attempts - 1)
                notice = self._on_retry(host, end, delay) if self._on_retry else None
                if notice is not None:
                    await self._queue.put(notice)
                await asyncio.sleep(delay)
        except Exception as exc:  # noqa: BLE001 - whatever ends a reader is raised to the consumer
            await self._queue.put(_Failed(host, exc))
        finally:
            state.ended = True

    async def _call_once(self, host: str, state: HostState) -> CallEnd:
        """Read one call to its end; items wait for room in the queue."""
        call = self._open(host)
        try:
            async for response in call:
                item = self._convert(host, response)
                state.connected = True
                state.attempts = 0
                state.received += 1
                await self._queue.put(item)
            return CallEnd(grpc.StatusCode.OK, (await call.details()) or "")
        except grpc.RpcError as exc:
            return CallEnd(exc.code(), exc.details() or "", exc)
        finally:
            state.connected = False
            call.cancel()  # ends the call at once when leaving early; nothing once it has ended


@dataclass(frozen=True)
class ClientTls:
    """TLS for the clients' TCP targets: the CA that issued the daemons' certificate, and the
    client's own certificate and key where the daemons require one (docs/security.md)."""

    ca_file: str
    cert_file: str | None = None
    key_file: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate needs both its cert and key file")
        with open(self.ca_file, "rb") as ca:
            root = ca.read()
        chain = key = None
        if self.cert_file is not None and self.key_file is not None:
            with open(self.cert_file, "rb") as cert, open(self.key_file, "rb") as private:
                chain, key = cert.read(), private.read()
        return grpc.ssl_channel_credentials(root, key, chain)


def _secure(target: str, tls: ClientTls | None) -> bool:
    # Unix sockets are plaintext on the daemons (their file mode is the control).
    return tls is not None and not target.startswith("unix")


def aio_channel(target: str, tls: ClientTls | None = None) -> grpc.aio.Channel:
    """The one place the asyncio clients open a channel: TLS for TCP targets when `tls`."""
    if tls is not None and _secure(target, tls):
        return grpc.aio.secure_channel(target, tls.credentials())
    return grpc.aio.insecure_channel(target)


def sync_channel(target: str, tls: ClientTls | None = None) -> grpc.Channel:
    """As `aio_channel`, for grpc's blocking API."""
    if tls is not None and _secure(target, tls):
        return grpc.secure_channel(target, tls.credentials())
    return grpc.insecure_channel(target)


class AioChannelClient:
    """Base of the asyncio clients: one grpc.aio channel per target, opened at first use.

    Opening channels lazily, inside the coroutines that use them, binds each to the loop that
    runs the client (a blocking client's private loop, or the caller's).
    """

    def __init__(self, tls: ClientTls | None = None) -> None:
        self._channels: dict[str, grpc.aio.Channel] = {}
        self.tls = tls

    def _channel(self, target: str) -> grpc.aio.Channel:
        channel = self._channels.get(target)
        if channel is None:
            channel = self._channels[target] = aio_channel(target, self.tls)
        return channel

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every channel (in-flight calls end with CANCELLED)."""
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            await channel.close()
