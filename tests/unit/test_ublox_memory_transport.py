"""The in-memory receiver as a transport: what the link sees of it, and of its unplug.

The receiver behind it is the pty emulator's own `F9tReceiver`; these tests check the carrier
(open, read, write, cancel, one host at a time, unplug and re-plug) and that `UbxLink` runs over
it unchanged. The servicer over it is tested in tests/integration/test_ublox_memory_servicer.py.
"""

from __future__ import annotations

import asyncio
import errno
import stat
import threading
import time
from collections.abc import Iterator

import pytest
from pyubx2 import UBXMessage

from panoseti_appliance.ublox.emulator import MemoryReceiver, MemoryTransport
from panoseti_appliance.ublox.emulator import f9tmessages as msg
from panoseti_appliance.ublox.emulator import memory as memory_module
from panoseti_appliance.ublox.server.f9t import poll_bytes
from panoseti_appliance.ublox.server.link import Ended, LinkLost, UbxLink
from panoseti_appliance.ublox.server.transport import Transport, TransportFactory
from panoseti_appliance.ublox.ubxframes import FrameSplitter, RawFrame

WAIT = 20.0
RAM, BBR = 1, 2
TIM_TP_USB = "CFG_MSGOUT_UBX_TIM_TP_USB"


@pytest.fixture
def receiver() -> Iterator[MemoryReceiver]:
    with MemoryReceiver(epoch_s=0.05) as rx:
        yield rx


@pytest.fixture
def host(receiver: MemoryReceiver) -> Iterator[MemoryTransport]:
    transport = receiver.factory("/dev/any-name-will-do", 115200)
    transport.open()
    yield transport
    transport.close()


def read_bytes(transport: Transport, count: int) -> bytes:
    """The next `count` bytes the receiver sent, whatever they are."""
    data = b""
    deadline = time.monotonic() + WAIT
    while len(data) < count:
        assert time.monotonic() < deadline, f"only {len(data)} of {count} bytes arrived"
        data += transport.read(count - len(data))
    return data


def read_frames(transport: Transport, count: int) -> list[RawFrame]:
    """The next `count` whole frames the receiver sent."""
    splitter = FrameSplitter()
    frames: list[RawFrame] = []
    deadline = time.monotonic() + WAIT
    while len(frames) < count:
        assert time.monotonic() < deadline, f"only {len(frames)} of {count} frames arrived"
        frames += splitter.feed(transport.read(4096))
    return frames


def test_the_factory_and_stat_fit_the_daemons_types(receiver: MemoryReceiver) -> None:
    factory: TransportFactory = receiver.factory  # checked by mypy, as the servicer takes it
    assert isinstance(factory("ublox-f9t", 9600), MemoryTransport)
    assert stat.S_ISCHR(receiver.stat("ublox-f9t"))
    assert stat.S_IMODE(receiver.stat("ublox-f9t")) != 0  # what device_present requires


def test_polls_are_answered_with_the_receivers_own_frames(
    receiver: MemoryReceiver, host: MemoryTransport
) -> None:
    host.write(poll_bytes(*msg.MON_VER) + poll_bytes(*msg.SEC_UNIQID))
    frames = read_frames(host, 2)
    assert [f.raw for f in frames] == [msg.mon_ver("ZED-F9T"), msg.sec_uniqid(receiver.unique_id)]
    assert [identity for identity, _ in receiver.received] == ["MON-VER", "SEC-UNIQID"]


def test_valset_reaches_the_register_store_and_drives_the_epoch_output(
    receiver: MemoryReceiver, host: MemoryTransport
) -> None:
    host.write(UBXMessage.config_set(RAM | BBR, 0, [(TIM_TP_USB, 1)]).serialize())
    assert read_frames(host, 1)[0].raw == msg.ack(*msg.CFG_VALSET, True)
    assert receiver.value(TIM_TP_USB, "RAM") == 1
    assert receiver.value(TIM_TP_USB, "BBR") == 1
    periodic = read_frames(host, 3)
    assert {f.identity for f in periodic} == {"TIM-TP"}


def test_fault_hooks_act_as_on_the_pty(receiver: MemoryReceiver, host: MemoryTransport) -> None:
    key = 0x40050024  # CFG_TP_FREQ_TP1
    receiver.nak_keys = {key}
    host.write(UBXMessage.config_set(RAM, 0, [("CFG_TP_FREQ_TP1", 5)]).serialize())
    assert read_frames(host, 1)[0].raw == msg.ack(*msg.CFG_VALSET, False)
    receiver.nak_keys = set()
    receiver.mismatch = {key: 7}
    host.write(UBXMessage.config_set(RAM, 0, [("CFG_TP_FREQ_TP1", 5)]).serialize())
    assert read_frames(host, 1)[0].raw == msg.ack(*msg.CFG_VALSET, True)
    assert receiver.value(key) == 7
    receiver.corrupt_checksums = True
    host.write(poll_bytes(*msg.MON_VER))
    good = msg.mon_ver("ZED-F9T")
    raw = read_bytes(host, len(good))
    assert raw[:-1] == good[:-1]
    assert raw[-1] != good[-1]
    assert FrameSplitter().feed(raw) == []


def test_a_silent_receiver_records_requests_and_says_nothing(
    receiver: MemoryReceiver, host: MemoryTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory_module, "READ_TIMEOUT_S", 0.2)
    receiver.silent = True
    host.write(poll_bytes(*msg.MON_VER))
    assert host.read(4096) == b""  # nothing within a read's timeout
    assert host.in_waiting == 0
    assert [identity for identity, _ in receiver.received] == ["MON-VER"]


def test_open_starts_empty_and_one_host_at_a_time(receiver: MemoryReceiver) -> None:
    first = receiver.factory("ublox-f9t", 115200)
    first.open()
    first.write(poll_bytes(*msg.MON_VER))
    assert first.in_waiting > 0
    second = receiver.factory("ublox-f9t", 115200)
    with pytest.raises(OSError, match="opened by another host") as busy:
        second.open()
    assert busy.value.errno == errno.EBUSY
    first.close()
    with pytest.raises(OSError, match="port not open"):
        first.read(1)
    first.open()  # what the other end sent before is gone, as after pyserial's buffer reset
    assert first.in_waiting == 0
    first.close()
    second.open()
    second.close()


def test_cancel_read_wakes_a_blocked_read(
    host: MemoryTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory_module, "READ_TIMEOUT_S", 10 * WAIT)  # only a cancel ends it
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(host.read(10)))
    reader.start()
    host.cancel_read()
    reader.join(WAIT)
    assert not reader.is_alive()
    assert got == [b""]


def test_unplug_makes_the_open_end_fail_like_a_vanished_device(
    receiver: MemoryReceiver, host: MemoryTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory_module, "READ_TIMEOUT_S", 10 * WAIT)  # only the unplug ends it
    errors: list[OSError] = []

    def blocked_read() -> None:
        try:
            host.read(10)
        except OSError as exc:
            errors.append(exc)

    reader = threading.Thread(target=blocked_read)
    reader.start()
    receiver.unplug()
    reader.join(WAIT)
    assert not reader.is_alive()
    assert [e.errno for e in errors] == [errno.EIO]
    for call in (lambda: host.write(b"x"), lambda: host.in_waiting):
        with pytest.raises(OSError, match="receiver unplugged"):
            call()
    host.close()  # safe after the device has gone
    with pytest.raises(FileNotFoundError):
        receiver.stat("ublox-f9t")
    with pytest.raises(FileNotFoundError):
        receiver.factory("ublox-f9t", 115200).open()


def test_replug_is_a_power_cycle(receiver: MemoryReceiver, host: MemoryTransport) -> None:
    host.write(UBXMessage.config_set(RAM, 0, [("CFG_TP_FREQ_TP2", 4)]).serialize())
    host.write(UBXMessage.config_set(BBR, 0, [("CFG_TP_FREQ_TP1", 3)]).serialize())
    assert [f.raw for f in read_frames(host, 2)] == [msg.ack(*msg.CFG_VALSET, True)] * 2
    assert receiver.value("CFG_TP_FREQ_TP2") == 4
    receiver.unplug()
    receiver.replug()
    assert stat.S_ISCHR(receiver.stat("ublox-f9t"))
    assert receiver.value("CFG_TP_FREQ_TP2") == 0  # RAM only: lost
    assert receiver.value("CFG_TP_FREQ_TP1") == 3  # rebuilt from BBR
    again = receiver.factory("ublox-f9t", 115200)
    again.open()
    again.close()


async def test_the_link_runs_over_it_and_loses_it_on_unplug(receiver: MemoryReceiver) -> None:
    lost: list[str] = []
    link = UbxLink(
        "ublox-f9t",
        115200,
        asyncio.get_running_loop(),
        on_lost=lost.append,
        transport_factory=receiver.factory,
    )
    assert link.device_errors == (OSError,)
    await asyncio.to_thread(link.open)
    try:
        replies = await link.request(poll_bytes(*msg.SEC_UNIQID), {msg.SEC_UNIQID}, timeout=WAIT)
        assert replies is not None
        assert replies[0].identity == "SEC-UNIQID"
        sub = link.subscribe(10)
        receiver.unplug()
        ended = await asyncio.wait_for(sub.get(), WAIT)
        assert isinstance(ended, Ended)
        assert ended.kind == "lost"
        assert "receiver unplugged" in ended.message
        assert lost == [ended.message]
        assert not link.alive
        with pytest.raises(LinkLost):
            await link.request(poll_bytes(*msg.MON_VER), {msg.MON_VER})
    finally:
        await link.aclose()
