"""The serial link on a real pty: framing, reply routing, cache, fan-out, device loss.

The test plays the receiver by hand on the pty master, so every byte the link sees is explicit.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import threading
import time
import tty
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from pyubx2 import UBXMessage

from panoseti_appliance.ublox.parsed import UbxFrame
from panoseti_appliance.ublox.server import link as link_module
from panoseti_appliance.ublox.server.f9t import poll_bytes
from panoseti_appliance.ublox.server.link import (
    MAX_CONSECUTIVE_ERRORS,
    Dropped,
    Ended,
    LinkLost,
    Subscription,
    UbxLink,
    ack_keys,
    route_key,
)
from panoseti_appliance.ublox.ubxframes import build_frame

CAPTURE = Path(__file__).resolve().parents[1] / "data" / "ubx_packets.jsonl"
FRAMES = [
    base64.b64decode(json.loads(line)["payload_b64"]) for line in CAPTURE.read_text().splitlines()
]
ACK_VALGET = FRAMES[0]
TIM_TP = FRAMES[2]
NAV_TIMEUTC = FRAMES[1]
NMEA = b"$GNTXT,01,01,02,ANTSTATUS=OK*25\r\n"
#: Checksum-valid but unparsable: pyubx2 knows CFG-RST only as a command, not as output.
UNPARSABLE = build_frame(0x06, 0x04, b"\x01")
#: Checksum-valid RXM-QZSSL6 with a 1-byte payload: pyubx2's field decoder raises IndexError.
TOO_SHORT = build_frame(0x02, 0x73, b"\x00")
WAIT = 20.0


class Pty:
    """A pty whose slave the link opens; the test writes and reads the master."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    async def read_frame(self) -> bytes:
        """The next whole frame the host wrote."""
        buf = b""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            buf += await asyncio.to_thread(os.read, self.master, 4096)
            if len(buf) >= 8 and len(buf) >= 8 + int.from_bytes(buf[4:6], "little"):
                return buf
        raise AssertionError("host wrote no frame")

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def pty() -> Iterator[Pty]:
    p = Pty()
    yield p
    p.close()


@pytest.fixture
async def watched_link(pty: Pty) -> AsyncIterator[tuple[UbxLink, list[str]]]:
    """An open link and the reasons its on_lost callback has been given."""
    lost: list[str] = []
    lk = UbxLink(pty.path, 115200, asyncio.get_running_loop(), on_lost=lost.append)
    await asyncio.to_thread(lk.open)
    yield lk, lost
    await lk.aclose()


@pytest.fixture
def link(watched_link: tuple[UbxLink, list[str]]) -> UbxLink:
    return watched_link[0]


@pytest.fixture
async def patient_link(pty: Pty, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[UbxLink]:
    """A link that never gives up on an incomplete frame within a test's lifetime.

    For tests that hold a frame incomplete on purpose: a loaded machine must not turn their
    pauses into a give-up.
    """
    monkeypatch.setattr(link_module, "FRAME_WAIT_S", 10 * WAIT)
    lk = UbxLink(pty.path, 115200, asyncio.get_running_loop())
    await asyncio.to_thread(lk.open)
    yield lk
    await lk.aclose()


async def next_item(sub: Subscription) -> UbxFrame | Dropped | Ended:
    return await asyncio.wait_for(sub.get(), WAIT)


async def test_frames_between_noise_are_cached_and_streamed(pty: Pty, link: UbxLink) -> None:
    sub = link.subscribe(10)
    assert sub.cached == []
    before = time.time()
    pty.send(b"$GNGGA,,,,,,0,00,99.99,,,,,,*56\r\n" + b"\x00\xb5\xff garbage " + TIM_TP)
    pty.send(b"\xd3\x00\x0a" + b"\x01" * 13 + NAV_TIMEUTC)  # RTCM-like: 10 bytes + CRC
    first, second = await next_item(sub), await next_item(sub)
    assert isinstance(first, UbxFrame)
    assert isinstance(second, UbxFrame)
    assert (first.identity, first.raw) == ("TIM-TP", TIM_TP)
    assert (second.identity, second.raw) == ("NAV-TIMEUTC", NAV_TIMEUTC)
    assert before <= first.rx_time <= second.rx_time <= time.time()
    # A later subscriber gets the cache: newest per identity, in first-seen order.
    pty.send(FRAMES[3])  # a newer TIM-TP
    assert isinstance(await next_item(sub), UbxFrame)
    late = link.subscribe(10)
    assert [f.raw for f in late.cached] == [FRAMES[3], NAV_TIMEUTC]


async def test_replies_go_to_the_waiting_request_not_the_stream(pty: Pty, link: UbxLink) -> None:
    sub = link.subscribe(10)
    request = asyncio.create_task(
        link.request(poll_bytes(0x06, 0x8B), set(ack_keys(0x06, 0x8B)), timeout=WAIT)
    )
    assert await pty.read_frame() == poll_bytes(0x06, 0x8B)
    # An ACK for another message is not this request's answer; the matching one is.
    other_ack = UBXMessage(0x05, 0x01, 0, payload=b"\x06\x8a").serialize()
    pty.send(other_ack + ACK_VALGET + TIM_TP)
    frames = await request
    assert frames is not None
    assert [f.raw for f in frames] == [ACK_VALGET]
    streamed = [await next_item(sub), await next_item(sub)]
    assert [f.raw for f in streamed if isinstance(f, UbxFrame)] == [other_ack, TIM_TP]
    assert route_key(frames[0]) == (0x05, 0x01, 0x06, 0x8B)


async def test_periodic_frames_are_streamed_even_when_awaited(pty: Pty, link: UbxLink) -> None:
    sub = link.subscribe(10)
    request = asyncio.create_task(
        link.request(poll_bytes(0x0D, 0x01), {(0x0D, 0x01)}, timeout=WAIT)
    )
    await pty.read_frame()
    pty.send(TIM_TP)
    frames = await request
    assert frames is not None
    assert frames[0].raw == TIM_TP
    item = await next_item(sub)
    assert isinstance(item, UbxFrame)
    assert item.raw == TIM_TP


async def test_no_answer_is_none(pty: Pty, link: UbxLink) -> None:
    assert await link.request(poll_bytes(0x0A, 0x04), {(0x0A, 0x04)}, timeout=0.2) is None


async def test_slow_subscriber_drops_oldest_and_is_told(pty: Pty, link: UbxLink) -> None:
    sub = link.subscribe(2)
    probe = link.subscribe(100)
    for raw in FRAMES[1:6]:
        pty.send(raw)
    for _ in range(5):
        assert isinstance(await next_item(probe), UbxFrame)
    first = await next_item(sub)
    assert first == Dropped(3)
    rest = [await next_item(sub), await next_item(sub)]
    assert [f.raw for f in rest if isinstance(f, UbxFrame)] == FRAMES[4:6]


async def test_device_loss_ends_streams_and_requests(
    pty: Pty, watched_link: tuple[UbxLink, list[str]]
) -> None:
    link, lost = watched_link
    sub = link.subscribe(10)
    request = asyncio.create_task(
        link.request(poll_bytes(0x0A, 0x04), {(0x0A, 0x04)}, timeout=WAIT)
    )
    await pty.read_frame()
    os.close(pty.master)  # the receiver vanishes
    with pytest.raises(LinkLost):
        await request
    ended = await next_item(sub)
    assert isinstance(ended, Ended)
    assert ended.kind == "lost"
    assert lost == [ended.message]
    assert not link.alive
    with pytest.raises(LinkLost):
        await link.request(poll_bytes(0x0A, 0x04), {(0x0A, 0x04)})


def corrupt(frame: bytes) -> bytes:
    return frame[:-1] + bytes((frame[-1] ^ 0xFF,))


async def until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def has_consumed(link: UbxLink, count: int) -> Callable[[], bool]:
    """True once the link's reader has framed, skipped or buffered `count` bytes in all."""

    def check() -> bool:
        stats = link.framing
        return stats.framed_bytes + stats.skipped_bytes + stats.pending_bytes == count

    return check


# Each case: the writes that end with TIM-TP, and the framing counters they must leave behind.
JUNK_BEFORE_A_FRAME: dict[str, tuple[list[bytes], dict[str, int]]] = {
    "stray B5 alone": ([b"\xb5", TIM_TP], {"skipped_bytes": 1}),
    "B5 B5 62": ([b"\xb5" + TIM_TP], {"skipped_bytes": 1}),
    "NMEA": ([NMEA + TIM_TP], {"skipped_bytes": len(NMEA)}),
    "bad checksum": ([corrupt(NAV_TIMEUTC) + TIM_TP], {"skipped_bytes": 28, "bad_checksums": 1}),
    "truncated frame": ([NAV_TIMEUTC[:11] + TIM_TP], {"skipped_bytes": 11, "bad_checksums": 1}),
    "frame split in three": (
        [NMEA + TIM_TP[:1], TIM_TP[1:7], TIM_TP[7:]],
        {"skipped_bytes": len(NMEA)},
    ),
}


@pytest.mark.parametrize("case", JUNK_BEFORE_A_FRAME, ids=list(JUNK_BEFORE_A_FRAME))
async def test_junk_before_a_frame_never_costs_the_frame(
    pty: Pty, patient_link: UbxLink, case: str
) -> None:
    link = patient_link
    writes, counts = JUNK_BEFORE_A_FRAME[case]
    assert b"".join(writes).endswith(TIM_TP)
    sub = link.subscribe(10)
    sent = 0
    for data in writes[:-1]:  # each write is read by the link before the next one is made
        pty.send(data)
        sent += len(data)
        await until(has_consumed(link, sent), "the link to read the write")
        assert link.framing.frames == 0
    pty.send(writes[-1])
    item = await next_item(sub)
    assert isinstance(item, UbxFrame)
    assert (item.identity, item.raw) == ("TIM-TP", TIM_TP)
    zero = {"bad_checksums": 0, "bad_lengths": 0, "given_up": 0, "pending_bytes": 0}
    expected = {"frames": 1, **zero} | counts
    stats = link.framing
    assert {k: getattr(stats, k) for k in expected} == expected
    assert link.parse_errors == 0


@pytest.mark.parametrize("bad", [UNPARSABLE, TOO_SHORT], ids=["unknown message", "too short"])
async def test_unparsable_frame_is_counted_and_skipped(pty: Pty, link: UbxLink, bad: bytes) -> None:
    sub = link.subscribe(10)
    pty.send(bad + TIM_TP + bad + NAV_TIMEUTC)
    items = [await next_item(sub), await next_item(sub)]
    assert [i.raw for i in items if isinstance(i, UbxFrame)] == [TIM_TP, NAV_TIMEUTC]
    assert link.parse_errors == 2
    assert link.framing.frames == 4  # framed fine; pyubx2 could not parse two of them
    assert link.alive


async def test_only_unparsable_frames_mean_a_broken_port(
    pty: Pty, watched_link: tuple[UbxLink, list[str]]
) -> None:
    link, lost = watched_link
    sub = link.subscribe(10)
    pty.send(UNPARSABLE * (MAX_CONSECUTIVE_ERRORS - 1) + TIM_TP)  # one good frame resets
    assert isinstance(await next_item(sub), UbxFrame)
    pty.send(UNPARSABLE * MAX_CONSECUTIVE_ERRORS)
    ended = await next_item(sub)
    assert isinstance(ended, Ended)
    assert ended.kind == "lost"
    assert ended.message.startswith(f"{MAX_CONSECUTIVE_ERRORS} unparsable frames in a row")
    assert lost == [ended.message]
    assert not link.alive
    assert link.parse_errors == 2 * MAX_CONSECUTIVE_ERRORS - 1


async def test_a_bug_while_parsing_loses_the_link_and_is_not_counted_as_unparsable(
    pty: Pty,
    watched_link: tuple[UbxLink, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    link, lost = watched_link
    sub = link.subscribe(10)

    def broken_parse(raw: bytes, rx_time: float) -> UbxFrame:
        raise KeyError("a bug in the project's own frame handling")

    monkeypatch.setattr(UbxFrame, "from_raw", broken_parse)
    pty.send(TIM_TP)
    ended = await next_item(sub)
    assert isinstance(ended, Ended)
    assert ended.kind == "lost"
    assert lost == [ended.message]
    assert ended.message.startswith("reader failed: KeyError(")
    assert link.parse_errors == 0
    assert not link.alive
    assert any(r.exc_info for r in caplog.records if "reader of" in r.getMessage())


async def test_a_frame_held_back_by_a_bogus_header_keeps_its_receive_time(
    pty: Pty, patient_link: UbxLink
) -> None:
    link = patient_link
    sub = link.subscribe(100)
    # A doubled sync reads as a header claiming 269 payload bytes: TIM-TP waits behind it.
    pty.send(b"\xb5\x62" + TIM_TP)
    await until(has_consumed(link, 2 + len(TIM_TP)), "the link to read TIM-TP")
    between = time.time()
    followers = [FRAMES[3]] * 12  # more than enough bytes to disprove the header
    pty.send(b"".join(followers))
    items = [await next_item(sub) for _ in range(1 + len(followers))]
    frames = [i for i in items if isinstance(i, UbxFrame)]
    assert [f.raw for f in frames] == [TIM_TP, *followers]
    assert frames[0].rx_time <= between <= frames[1].rx_time
    stats = link.framing
    assert (stats.bad_checksums, stats.given_up, stats.skipped_bytes) == (1, 0, 2)


async def test_a_damaged_header_is_given_up_when_no_more_bytes_come(
    pty: Pty, link: UbxLink
) -> None:
    sub = link.subscribe(10)
    pty.send(b"\xb5\x62" + TIM_TP)  # the receiver then stays silent
    await until(has_consumed(link, 2 + len(TIM_TP)), "the link to read TIM-TP")
    between = time.time()
    item = await next_item(sub)
    assert isinstance(item, UbxFrame)
    assert item.raw == TIM_TP
    assert item.rx_time <= between  # stamped when read, not when released
    stats = link.framing
    assert (stats.given_up, stats.skipped_bytes, stats.pending_bytes) == (1, 2, 0)


async def test_a_healthy_link_is_not_wedged(pty: Pty, link: UbxLink) -> None:
    pty.send(TIM_TP)
    sub = link.subscribe(10)
    assert isinstance(await next_item(sub), UbxFrame)
    assert link.wedged() is None
    assert link.frames_received == 1


async def test_a_reader_stuck_in_the_driver_is_wedged(pty: Pty, link: UbxLink) -> None:
    # A driver that never returns from read() (the edge of the physical world, played here):
    # the reader stops turning, and ten seconds later the link calls itself wedged.
    stuck = asyncio.Event()
    release = threading.Event()
    port = link._port
    assert port is not None
    real_read = port.read

    def read_forever(size: int = 1) -> bytes:
        asyncio.run_coroutine_threadsafe(_set(stuck), loop)
        release.wait()
        return real_read(size)

    loop = asyncio.get_running_loop()
    port.read = read_forever  # type: ignore[method-assign]
    await asyncio.wait_for(stuck.wait(), WAIT)
    try:
        now = time.monotonic()
        assert link.wedged(now) is None
        reason = link.wedged(now + link_module.WEDGED_S + 1)
        assert reason is not None
        assert reason.startswith(f"the F9T reader of {pty.path} made no progress")
    finally:
        release.set()


async def _set(event: asyncio.Event) -> None:
    event.set()


async def test_a_reader_that_fails_loses_the_link_with_the_reason(
    pty: Pty, watched_link: tuple[UbxLink, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    link, lost = watched_link
    port = link._port
    assert port is not None

    def broken_read(size: int = 1) -> bytes:
        raise ValueError("driver returned nonsense")

    port.read = broken_read  # type: ignore[method-assign]
    await until(lambda: bool(lost), "the link to be lost")
    assert lost == ["reader failed: ValueError('driver returned nonsense')"]
    assert not link.alive
    assert any(r.exc_info for r in caplog.records if "reader of" in r.getMessage())
