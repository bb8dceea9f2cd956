"""The multi-host stream core against scripted DaqData servers on loopback.

The servers are the real grpc servers of test_client_rules (each StreamImages call follows a
script); the core reads them over grpc.aio channels with rules and retry policies chosen here,
so merging, the bounded queue, retries, giving up, stopping and the per-host state are driven
exactly. The last test interrupts a blocking client's stream the way Ctrl-C does.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future
from typing import Any

import grpc
import pytest

from panoseti_appliance._proto import daq_data_pb2, daq_data_pb2_grpc
from panoseti_appliance.daqdata.client import DaqDataClient
from panoseti_appliance.multihost import CallEnd, HostState, MultiHostStream, Verdict
from panoseti_appliance.retry import RetryPolicy
from tests.daemons import free_tcp_port
from tests.integration.test_client_rules import WAIT, Server, forever, response, send, servers

__all__ = ["servers"]  # the fixture, used by this module

FAST = RetryPolicy(initial=0.02, factor=2.0, max_delay=0.1)
REQUEST = daq_data_pb2.StreamImagesRequest(stream_movie_data=True, stream_pulse_height_data=True)
Item = tuple[str, int, int]  # (target, module id, frame number)


def label(target: str, response: Any) -> Item:
    return target, response.pano_image.module_id, response.pano_image.frame_number


def retry_restarts(target: str, end: CallEnd, state: HostState) -> Verdict:
    """OK ends a host, a server going away or cancelling is retried, anything else raised."""
    if end.error is None:
        return Verdict.END
    if end.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
        return Verdict.RETRY
    return Verdict.RAISE


@contextlib.asynccontextmanager
async def merging(targets: list[str], **options: Any) -> AsyncIterator[MultiHostStream[Any, Item]]:
    """A MultiHostStream over `targets` (StreamImages, fail-fast calls) and its channels."""
    channels = {t: grpc.aio.insecure_channel(t) for t in targets}

    def open_call(target: str) -> Any:
        return daq_data_pb2_grpc.DaqDataStub(channels[target]).StreamImages(REQUEST)

    settings: dict[str, Any] = {
        "convert": label,
        "judge": retry_restarts,
        "policy": FAST,
        "queue_size": 16,
        **options,
    }
    try:
        yield MultiHostStream(targets, open_call, **settings)
    finally:
        for channel in channels.values():
            await channel.close()


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.01)


def frames(items: list[Item], target: str) -> list[int]:
    return [frame for t, _, frame in items if t == target]


async def test_merge_keeps_each_hosts_order_and_ends_when_every_host_has(
    servers: Callable[..., Server],
) -> None:
    a, b = servers(1, send(5)), servers(2, send(3))
    async with merging([a.target, b.target]) as stream:
        items = [item async for item in stream.items()]
    assert frames(items, a.target) == [0, 1, 2, 3, 4]
    assert frames(items, b.target) == [0, 1, 2]
    for server, count in ((a, 5), (b, 3)):
        state = stream.states[server.target]
        assert state.ended
        assert not state.connected
        assert (state.received, state.attempts) == (count, 0)
        assert state.last_end == CallEnd(grpc.StatusCode.OK, "")


async def test_a_full_queue_makes_the_reader_wait_and_loses_nothing(
    servers: Callable[..., Server],
) -> None:
    a = servers(1, send(40))
    async with merging([a.target], queue_size=2) as stream:
        merged = stream.items()
        first = await anext(merged)
        state = stream.states[a.target]
        # Behind the item taken: two in the queue and one held by the reader, waiting for room.
        await until(lambda: state.received >= 4, "the queue to fill")
        await asyncio.sleep(0.2)  # room to run on, were anything but the queue holding it
        assert state.received == 4
        assert not state.ended
        rest = [item async for item in merged]
    assert frames([first, *rest], a.target) == list(range(40))
    assert state.ended


async def test_a_host_that_goes_down_is_retried_and_comes_back(
    servers: Callable[..., Server],
) -> None:
    steady = servers(1, forever)
    port = free_tcp_port()
    flaky = Server(2, [forever], port)
    stop = asyncio.Event()
    phase = "both"
    seen_down: set[int] = set()
    try:
        async with merging([steady.target, flaky.target]) as stream:
            state = stream.states[flaky.target]
            async for _target, module, _frame in stream.items(stop):
                if phase == "both" and module == 2 and state.received >= 3:
                    await asyncio.to_thread(flaky.stop)
                    phase = "down"
                elif phase == "down":
                    seen_down.add(module)
                    if state.attempts >= 2 and not state.connected:
                        assert state.last_end is not None
                        assert state.last_end.code is grpc.StatusCode.UNAVAILABLE
                        flaky = Server(2, [forever], port)
                        phase = "back"
                elif phase == "back" and module == 2:
                    assert state.connected
                    assert state.attempts == 0
                    stop.set()
    finally:
        flaky.stop()
    assert 1 in seen_down  # the steady host kept streaming while the other was away
    assert all(s.ended for s in stream.states.values())


@pytest.mark.parametrize("kind", [asyncio.Event, threading.Event])
async def test_either_stop_event_ends_the_stream_and_cancels_every_call(
    servers: Callable[..., Server], kind: Callable[[], asyncio.Event | threading.Event]
) -> None:
    a, b = servers(1, forever), servers(2, forever)
    stop = kind()
    received = 0
    async with merging([a.target, b.target]) as stream:
        async for _ in stream.items(stop):
            received += 1
            if received == 5:
                stop.set()
    assert received == 5
    assert await asyncio.to_thread(a.servicer.cancelled.wait, WAIT)
    assert await asyncio.to_thread(b.servicer.cancelled.wait, WAIT)
    assert all(s.ended and not s.connected for s in stream.states.values())


async def test_retries_announce_themselves_and_give_up_after_max_attempts(
    servers: Callable[..., Server],
) -> None:
    a = servers(
        1,
        send(1, grpc.StatusCode.UNAVAILABLE, "restarting"),
        send(0, grpc.StatusCode.UNAVAILABLE, "still down"),
    )
    policy = RetryPolicy(initial=0.01, max_delay=0.01, max_attempts=3)
    received: list[Item] = []

    def announce(target: str, end: CallEnd, delay: float) -> Item:
        return target, -1, 0

    async def collect(items: AsyncIterator[Item]) -> None:
        """Keep each item as it comes: the ones before the error are part of the check."""
        async for item in items:
            received.append(item)

    async with merging([a.target], policy=policy, on_retry=announce) as stream:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await collect(stream.items())
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    assert info.value.details() == "still down"
    # The image, then a notice before each of the two retries; the third failure in a row
    # (the image came before the first) gives up.
    assert [module for _, module, _ in received] == [1, -1, -1]
    assert len(a.servicer.stream_requests) == 3
    assert stream.states[a.target].attempts == 3


async def test_an_error_in_converting_an_item_ends_the_stream_and_its_calls(
    servers: Callable[..., Server],
) -> None:
    a, b = servers(1, forever), servers(2, forever)

    def picky(target: str, response: Any) -> Item:
        if response.pano_image.module_id == 2 and response.pano_image.frame_number == 3:
            raise ValueError("frame 3 of module 2 is unreadable")
        return label(target, response)

    async with merging([a.target, b.target], convert=picky) as stream:
        with pytest.raises(ValueError, match="frame 3 of module 2 is unreadable"):
            async for _ in stream.items():
                pass
    assert await asyncio.to_thread(a.servicer.cancelled.wait, WAIT)
    assert await asyncio.to_thread(b.servicer.cancelled.wait, WAIT)


def one_then_idle(context: Any, module_id: int) -> Iterator[Any]:
    yield response(module_id, 0)
    while context.is_active():
        time.sleep(0.01)


def interrupt_once_waiting(thread_id: int) -> None:
    """Ctrl-C for `thread_id` (the main thread) once it waits for a result of the loop thread."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(thread_id)
        while frame is not None and frame.f_code is not Future.result.__code__:
            frame = frame.f_back
        if frame is not None:
            signal.pthread_kill(thread_id, signal.SIGINT)
            return
        time.sleep(0.005)


def test_ctrl_c_in_a_blocking_stream_cancels_its_calls_and_leaves_no_thread(
    servers: Callable[..., Server],
) -> None:
    a = servers(1, one_then_idle)
    main = threading.get_ident()
    assert main == threading.main_thread().ident
    with DaqDataClient(hosts=[a.target]) as client:
        stream = client.stream_images(None, True, True, 0, parse_pano_images=False)
        assert next(stream).pano_image.frame_number == 0
        # Ctrl-C while the caller waits for an image that does not come.
        threading.Thread(target=interrupt_once_waiting, args=(main,), daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            next(stream)
        assert a.servicer.cancelled.wait(WAIT)
        assert client.ping(a.target)  # the client still works
    assert "daqdata-client" not in [t.name for t in threading.enumerate()]
