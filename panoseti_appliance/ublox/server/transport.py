"""The byte stream between the daemon and its receiver, behind one small interface.

`UbxLink` needs from the receiver's port only what pyserial gave it: open and close, a read of
what is waiting (waiting up to READ_TIMEOUT_S for the first byte), how many bytes wait, a write
that returns once the bytes are sent, a way to wake a blocked read, and which exceptions mean
that the device has gone. `Transport` says exactly that; `SerialTransport` is the real port, and
the emulator's `MemoryReceiver` (docs/emulator.md) is a receiver in the same process.

A transport factory makes an unopened transport for a device and baud rate; the servicer's
device checks (does the node exist, is it a character device) go through a `DeviceStat` that
belongs to the same kind of transport, so a receiver without a device node can be used too.
"""

from __future__ import annotations

import os
import termios
from collections.abc import Callable
from typing import Protocol

import serial

#: How long a read waits for the first byte; the link's reader turns at least this often.
READ_TIMEOUT_S = 0.5
#: What a vanished or broken serial device raises from read, write or flush.
DEVICE_ERRORS: tuple[type[BaseException], ...] = (serial.SerialException, OSError, termios.error)


class Transport(Protocol):
    """A byte stream to one receiver, as `UbxLink` uses it from its reader and writer threads."""

    @property
    def device_errors(self) -> tuple[type[BaseException], ...]:
        """What the methods below raise when the device has gone (or cannot be opened)."""
        ...

    def open(self) -> None:
        """Open the device and discard whatever either direction still holds from before."""

    def close(self) -> None:
        """Release the device; safe after the device has gone."""

    @property
    def in_waiting(self) -> int:
        """How many received bytes can be read without waiting."""
        ...

    def read(self, size: int) -> bytes:
        """Up to `size` bytes: what is waiting, else the first to arrive within READ_TIMEOUT_S.

        b"" when nothing came in time or cancel_read woke the read.
        """
        ...

    def write(self, data: bytes) -> None:
        """Send all of `data` and return once it has left (pyserial's write and flush)."""

    def cancel_read(self) -> None:
        """Make a read blocked in another thread return now."""


#: Makes the unopened transport for (device, baud); cheap, no I/O.
TransportFactory = Callable[[str, int], Transport]
#: st_mode of a receiver's device node, following symlinks; OSError when there is none.
DeviceStat = Callable[[str], int]


def node_mode(device: str) -> int:
    """A real device node's st_mode (the serial transport's DeviceStat)."""
    return os.stat(device).st_mode


class SerialTransport:
    """The receiver's real serial port (a USB CDC-ACM tty, or a pty), through pyserial.

    Opened exclusively (a second daemon on the same receiver fails to open it instead of
    stealing half its replies), with both buffers reset on open.
    """

    device_errors = DEVICE_ERRORS

    def __init__(self, device: str, baud: int) -> None:
        self.device = device
        self.baud = baud
        self._port: serial.Serial | None = None

    def _opened(self) -> serial.Serial:
        port = self._port
        if port is None:
            raise serial.PortNotOpenError()
        return port

    def open(self) -> None:
        port = serial.Serial(
            self.device, baudrate=self.baud, timeout=READ_TIMEOUT_S, exclusive=True
        )
        try:
            port.reset_input_buffer()
            port.reset_output_buffer()
        except BaseException:
            port.close()
            raise
        self._port = port

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            port.close()

    @property
    def in_waiting(self) -> int:
        return self._opened().in_waiting

    def read(self, size: int) -> bytes:
        return self._opened().read(size)

    def write(self, data: bytes) -> None:
        port = self._opened()
        port.write(data)
        port.flush()

    def cancel_read(self) -> None:
        self._opened().cancel_read()
