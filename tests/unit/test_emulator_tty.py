"""The emulated ZED-F9T serving an existing tty (`tty_path`), with a real pty pair as that tty.

The emulator opens the pty's slave by path, as it opens `/dev/ttyGS0` on a USB gadget; the test
is the host and talks on the master, framing what comes back with the project's UBX splitter.
Closing the master hangs the slave up, as unbinding the gadget hangs `/dev/ttyGS0` up.
"""

from __future__ import annotations

import os
import resource
import select
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from panoseti_appliance.ublox.emulator import F9tEmulator
from panoseti_appliance.ublox.emulator import f9tmessages as msg
from panoseti_appliance.ublox.ubxframes import FrameSplitter, RawFrame, build_frame

EPOCH_S = 0.05
WAIT_S = 5.0  # generous deadline for anything the emulator must send
MON_VER_POLL = build_frame(*msg.MON_VER)
SEC_UNIQID_POLL = build_frame(*msg.SEC_UNIQID)


class PtyHost:
    """A pty pair standing for an existing serial line: the test owns the master end."""

    def __init__(self) -> None:
        self.master, slave = os.openpty()
        self.path = os.ttyname(slave)
        os.close(slave)  # the emulator opens it by path, like a device node
        os.set_blocking(self.master, False)
        self.splitter = FrameSplitter()

    def close(self) -> None:
        if self.master >= 0:
            os.close(self.master)
            self.master = -1

    def read(self, seconds: float) -> bytes:
        """Everything that arrives within `seconds`."""
        data = b""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if select.select([self.master], [], [], left)[0]:
                try:
                    data += os.read(self.master, 4096)
                except BlockingIOError:
                    pass
                except OSError:  # EIO: nobody has the slave open (yet)
                    time.sleep(min(left, 0.05))
        return data

    def ask(self, request: bytes, cls_msg: tuple[int, int]) -> tuple[RawFrame, list[RawFrame]]:
        """Send `request` and wait for the first frame of type `cls_msg`; also every frame before.

        The request is sent again every half second: bytes written before the emulator (re)opens
        the slave are flushed by its switch to raw mode.
        """
        seen: list[RawFrame] = []
        deadline = time.monotonic() + WAIT_S
        resend_at = 0.0
        while time.monotonic() < deadline:
            if time.monotonic() >= resend_at:
                os.write(self.master, request)
                resend_at = time.monotonic() + 0.5
            for frame in self.splitter.feed(self.read(0.05)):
                if (frame.cls_id, frame.msg_id) == cls_msg:
                    return frame, seen
                seen.append(frame)
        raise AssertionError(f"no answer of type {cls_msg} within {WAIT_S} s")


@pytest.fixture
def host() -> Iterator[PtyHost]:
    pty = PtyHost()
    yield pty
    pty.close()


def assert_answers_identity(host: PtyHost, model: bytes = b"ZED-F9T") -> None:
    ver, before = host.ask(MON_VER_POLL, msg.MON_VER)
    assert b"MOD=" + model + b"\0" in ver.payload
    assert b"FWVER=TIM 2.20" in ver.payload
    # With echo on, the poll itself would come back ahead of the answer.
    assert MON_VER_POLL not in [frame.raw for frame in before]
    uid, _ = host.ask(SEC_UNIQID_POLL, msg.SEC_UNIQID)
    assert uid.payload[0] == 1
    assert uid.payload[4:9] == bytes.fromhex("bc41a203df")


def test_serves_an_existing_tty_in_raw_mode(host: PtyHost) -> None:
    lflag_before = termios.tcgetattr(host.master)[3]
    assert lflag_before & termios.ECHO  # a fresh pty echoes: the emulator must switch it off
    with F9tEmulator(epoch_s=EPOCH_S, tty_path=host.path) as emu:
        assert emu.device_path == host.path
        lflag = termios.tcgetattr(host.master)[3]
        assert not lflag & (termios.ECHO | termios.ICANON)
        assert_answers_identity(host)
        emu.model = "ZED-F9P"
        ver, _ = host.ask(MON_VER_POLL, msg.MON_VER)
        assert b"MOD=ZED-F9P\0" in ver.payload


def test_a_host_that_does_not_read_never_blocks_the_receiver(host: PtyHost) -> None:
    """Answers that do not fit are dropped (the tty is non-blocking), then service carries on."""
    with F9tEmulator(epoch_s=EPOCH_S, tty_path=host.path) as emu:
        polls = 400  # 400 MON-VER answers are 100 KiB: far more than a pty holds unread
        os.write(host.master, MON_VER_POLL * polls)
        deadline = time.monotonic() + WAIT_S
        while len(emu.received) < polls and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(emu.received) == polls  # the receiver kept reading while its output was full
        answered = host.read(0.5)
        assert 0 < answered.count(b"MOD=ZED-F9T") < polls
        host.splitter = FrameSplitter()
        assert_answers_identity(host)


def test_hang_up_then_the_link_comes_back(tmp_path: Path) -> None:
    """Like a gadget unbind and rebind: the line hangs up, is absent a while, then is back."""
    link = tmp_path / "ttyGS0"
    first = PtyHost()
    link.symlink_to(first.path)
    second = PtyHost()
    try:
        with F9tEmulator(epoch_s=EPOCH_S, tty_path=link) as emu:
            assert emu.device_path == str(link)
            assert_answers_identity(first)
            link.unlink()
            first.close()  # hangs up the emulator's end; the node vanishes with it

            cpu_before = resource.getrusage(resource.RUSAGE_SELF)
            time.sleep(1.0)  # the emulator keeps retrying a path that does not exist
            cpu_after = resource.getrusage(resource.RUSAGE_SELF)
            busy = (cpu_after.ru_utime + cpu_after.ru_stime) - (
                cpu_before.ru_utime + cpu_before.ru_stime
            )
            assert busy < 0.5, f"{busy:.2f} s of CPU in 1 s while the link was gone: a busy loop"

            link.symlink_to(second.path)
            assert_answers_identity(second)
    finally:
        first.close()
        second.close()


def test_stop_while_the_link_is_gone(host: PtyHost) -> None:
    fds_before = len(os.listdir("/proc/self/fd"))
    with F9tEmulator(epoch_s=EPOCH_S, tty_path=host.path):
        assert_answers_identity(host)
        host.close()
        time.sleep(0.3)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("f9t-emu")]
    assert len(os.listdir("/proc/self/fd")) == fds_before - 1  # less the master closed above


def test_unplug_and_replug_are_for_the_pty_mode(host: PtyHost) -> None:
    with F9tEmulator(epoch_s=EPOCH_S, tty_path=host.path) as emu:
        for hook in (emu.unplug, emu.replug):
            with pytest.raises(ValueError, match="unbind the USB gadget"):
                hook()
        assert_answers_identity(host)


def test_refuses_what_is_not_a_tty(tmp_path: Path) -> None:
    fds_before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(ValueError, match="/dev/null is not a terminal device"):
        F9tEmulator(tty_path="/dev/null").start()
    with pytest.raises(FileNotFoundError):
        F9tEmulator(tty_path=tmp_path / "ttyGS9").start()
    assert len(os.listdir("/proc/self/fd")) == fds_before  # nothing leaked
    with pytest.raises(ValueError, match="with tty_path the device is that tty"):
        F9tEmulator(tty_path="/dev/ttyGS0", link=tmp_path / "ublox-f9t")
