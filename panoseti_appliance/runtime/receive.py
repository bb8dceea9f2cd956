"""A socket receive that cancellation cannot make lose bytes.

`loop.sock_recv` reads inside the event loop's reader callback and parks the bytes in a future;
if the awaiting task is cancelled after that callback ran but before the task resumed, the
bytes are gone. The Hashpipe reader is cancelled at every restart and must hand the next process
every byte it did not frame, so it waits for readability here and reads only once it runs again.
"""

from __future__ import annotations

import asyncio
import socket


async def receive(sock: socket.socket, size: int) -> bytes:
    """Up to `size` bytes from a non-blocking socket (b"" at end of stream).

    Cancelled while waiting, it has read nothing: whatever arrived is still in the socket.
    It always lets the event loop run first: a producer that never pauses would otherwise find
    data waiting at every call, and its reader would hold the loop and starve every stream.
    """
    await asyncio.sleep(0)
    while True:
        try:
            return sock.recv(size)
        except BlockingIOError:
            await readable(sock)


async def readable(sock: socket.socket) -> None:
    """Wait until `sock` has something to read (data, end of stream or an error)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
