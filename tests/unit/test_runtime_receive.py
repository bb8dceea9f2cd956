"""A reader cancelled at any moment leaves every byte it did not return in the socket."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from panoseti_appliance.runtime.receive import receive

PAYLOAD = bytes(range(256)) * 4
Reader = Callable[[socket.socket], Coroutine[Any, Any, bytes]]


async def _bytes_kept_when_cancelled(read: Reader, yields: int) -> bytes:
    """Cancel a reader `yields` loop turns after the data arrives; what it returned plus what
    the socket still holds."""
    ours, peer = socket.socketpair()
    with ours, peer:
        ours.setblocking(False)
        task = asyncio.create_task(read(ours))
        await asyncio.sleep(0)  # the reader is now waiting
        peer.sendall(PAYLOAD)
        for _ in range(yields):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        got = b"" if task.cancelled() else task.result()
        try:
            left = ours.recv(1 << 16)
        except BlockingIOError:
            left = b""
        return got + left


@pytest.mark.parametrize("yields", range(6))
def test_cancelling_receive_at_any_point_loses_no_byte(yields: int) -> None:
    kept = asyncio.run(_bytes_kept_when_cancelled(lambda s: receive(s, 1 << 16), yields))
    assert kept == PAYLOAD


def test_receive_reports_end_of_stream() -> None:
    async def main() -> bytes:
        ours, peer = socket.socketpair()
        with ours:
            ours.setblocking(False)
            task = asyncio.create_task(receive(ours, 1 << 16))
            await asyncio.sleep(0)
            peer.close()
            return await asyncio.wait_for(task, 5)

    assert asyncio.run(main()) == b""
