"""The one owner of the receiver's port (docs/ublox.md, "UBX messages the appliance uses").

The port is a `Transport` (`transport.py`): the serial device by default, or any other byte
stream a transport factory opens, such as the emulator's in-memory receiver. Threads do only
I/O: a reader thread reads whatever the port has, frames it with the project's
`FrameSplitter` (NMEA, RTCM, noise and broken frames are skipped and counted, and a stray 0xB5
never costs the frame behind it), parses each whole frame with pyubx2, and a writer thread drains
the write queue. Everything else runs on the asyncio loop, handed over with
`loop.call_soon_threadsafe`: routing a frame to the request waiting for it (by class/id, and for
ACK/NAK by the acknowledged class/id), the frame cache (newest per identity, first-seen order) and
the fan-out to subscribers. Because the cache and the subscriber list are only touched on the loop,
"snapshot the cache and subscribe" is atomic without a lock.

A vanished device (what the transport's `device_errors` name: SerialException, OSError for the
serial port) stops the reader at once, never spinning; the link fails pending requests with
`LinkLost`, ends every subscription and tells its owner.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from panoseti_appliance.runtime.logs import fields
from panoseti_appliance.ublox.parsed import PARSE_ERRORS, UbxFrame
from panoseti_appliance.ublox.server.transport import (
    SerialTransport,
    Transport,
    TransportFactory,
)
from panoseti_appliance.ublox.ubxframes import (
    MAX_PAYLOAD,
    SYNC,
    FrameSplitter,
    FramingStats,
    RawFrame,
)

log = logging.getLogger(__name__)

ACK_CLASS = 0x05
ACK_ACK, ACK_NAK = 0x01, 0x00
#: Classes whose frames are periodic output: also cached and streamed when a request takes them.
PERIODIC_CLASSES = frozenset({0x01, 0x0D})  # NAV, TIM
#: Most bytes taken from the port per read; a read returns at once with whatever is waiting.
READ_CHUNK_MAX = 16384
#: How long an incomplete frame may wait for its remaining bytes, on top of the time the longest
#: frame takes on the wire at the port's baud rate. The receiver writes whole frames, so a
#: candidate still incomplete after that is a damaged header holding real frames back.
FRAME_WAIT_S = 1.0
#: A thread of the link that makes no progress for this long is wedged (UbxLink.wedged).
WEDGED_S = 10.0
#: Checksum-valid frames pyubx2 cannot parse, in a row, after which the port is considered broken.
MAX_CONSECUTIVE_ERRORS = 50

RouteKey = tuple[int, ...]


class LinkLost(ConnectionError):
    """The device vanished or the link was closed while a request was waiting."""


def route_key(frame: UbxFrame) -> RouteKey:
    """(class, id) of a frame; for ACK-ACK/ACK-NAK (0x05, id, acknowledged class, acknowledged id)."""
    if frame.msg_cls == ACK_CLASS and len(frame.payload) >= 2:
        return (ACK_CLASS, frame.msg_id, frame.payload[0], frame.payload[1])
    return (frame.msg_cls, frame.msg_id)


def ack_keys(cls_id: int, msg_id: int) -> tuple[RouteKey, RouteKey]:
    """Route keys of the ACK-ACK and ACK-NAK that acknowledge (cls_id, msg_id)."""
    return (ACK_CLASS, ACK_ACK, cls_id, msg_id), (ACK_CLASS, ACK_NAK, cls_id, msg_id)


@dataclass
class _Waiter:
    """A request waiting for replies: collects frames with `keys` until one of `final` arrives."""

    keys: frozenset[RouteKey]
    final: frozenset[RouteKey]
    future: asyncio.Future[list[UbxFrame]]
    sent_seq: int | None = None  # frame sequence number when the request was written
    frames: list[UbxFrame] = field(default_factory=list)


@dataclass
class Ended:
    """The end of a subscription: why, as a gRPC-facing kind and message."""

    kind: str  # "lost", "reinit", "shutdown", "closed"
    message: str


@dataclass
class Dropped:
    """Frames dropped for a slow subscriber since the last delivery."""

    count: int


class Subscription:
    """A subscriber's bounded queue: drop-oldest when full, counted and reported once."""

    def __init__(self, maxsize: int, cached: list[UbxFrame]) -> None:
        self.cached = cached
        self._queue: collections.deque[UbxFrame] = collections.deque(maxlen=max(1, maxsize))
        self._dropped = 0
        self._ended: Ended | None = None
        self._event = asyncio.Event()

    @property
    def ended(self) -> Ended | None:
        return self._ended

    def put(self, frame: UbxFrame) -> None:
        if self._ended is not None:
            return
        if len(self._queue) == self._queue.maxlen:
            if not self._dropped:
                log.warning("CaptureUblox subscriber too slow: dropping its oldest frames")
            self._dropped += 1
        self._queue.append(frame)
        self._event.set()

    def end(self, ended: Ended) -> None:
        if self._ended is None:
            self._ended = ended
            self._event.set()

    async def get(self) -> UbxFrame | Dropped | Ended:
        """The next item: a Dropped notice first if frames were lost, then frames, then Ended."""
        while True:
            if self._dropped:
                n, self._dropped = self._dropped, 0
                log.error("dropped %d frames (client too slow)", n)
                return Dropped(n)
            if self._queue:
                return self._queue.popleft()
            if self._ended is not None:
                return self._ended
            self._event.clear()
            await self._event.wait()


class UbxLink:
    """Own one receiver port: read, write, route replies, cache and fan out frames."""

    def __init__(
        self,
        device: str,
        baud: int,
        loop: asyncio.AbstractEventLoop,
        on_lost: Callable[[str], None] | None = None,
        transport_factory: TransportFactory = SerialTransport,
    ) -> None:
        self.device = device
        self.baud = baud
        self._loop = loop
        self._on_lost = on_lost
        self._transport = transport_factory(device, baud)
        self._port: Transport | None = None  # the transport while open
        self._stop = threading.Event()
        self._writes: queue.Queue[tuple[bytes, _Waiter | None] | None] = queue.Queue()
        self._seq_lock = threading.Lock()
        self._seq = itertools.count(1)
        self._last_seq = 0
        self._threads: list[threading.Thread] = []
        self._waiters: list[_Waiter] = []
        self._cache: dict[str, UbxFrame] = {}
        self._subs: set[Subscription] = set()
        self.lost_reason: str | None = None
        self.parse_errors = 0
        self._consecutive_errors = 0
        self._splitter = FrameSplitter()
        self._bytes_read = 0
        # (stream offset after a read, host time of that read), for reads that may still hold
        # the last byte of a frame not yet complete.
        self._reads: collections.deque[tuple[int, float]] = collections.deque()
        self._max_frame_wait = FRAME_WAIT_S + (MAX_PAYLOAD + 8) * 10 / baud
        self._waiting: tuple[int, float] | None = None  # (stream offset, monotonic time)
        #: Frames handed to the loop (the STATUS line's messages/s).
        self.frames_received = 0
        # Progress marks of the threads (monotonic): the reader's last turn of its loop, and
        # when the writer started the write it is in (None while idle). See wedged().
        self._reader_turn = time.monotonic()
        self._writing_since: float | None = None

    @property
    def device_errors(self) -> tuple[type[BaseException], ...]:
        """What this link's transport raises for a device that is gone or cannot be opened."""
        return self._transport.device_errors

    # ---- lifecycle (blocking; call from a thread) -------------------------------------------

    def open(self) -> None:
        """Open and flush the port and start the reader and writer threads.

        Raises one of `device_errors` when the device cannot be opened.
        """
        self._transport.open()
        self._port = self._transport
        reader = threading.Thread(target=self._read_loop, name="ubx-reader", daemon=True)
        writer = threading.Thread(target=self._write_loop, name="ubx-writer", daemon=True)
        self._threads = [reader, writer]
        reader.start()
        writer.start()

    async def aclose(self, reason: str = "link closed") -> None:
        """Fail waiting requests, then stop the threads and close the port off the loop."""
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_exception(LinkLost(reason))
        self._waiters.clear()
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Stop both threads, close the port and join; safe to call more than once."""
        self._stop.set()
        self._writes.put(None)
        port = self._port
        if port is not None:
            try:
                port.cancel_read()
            except port.device_errors as exc:  # the port may already be gone with the device
                log.debug("cancel_read failed: %s", exc)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=5.0)
        if port is not None:
            try:
                port.close()
            except port.device_errors as exc:
                log.debug("closing the port failed: %s", exc)
            self._log_framing()
        self._port = None

    def _log_framing(self) -> None:
        """One line on close saying what the port delivered.

        INFO only when frames were damaged or unparsable: skipped bytes alone are normal (NMEA on
        the same port, the tail of a frame at open).
        """
        stats = self.framing
        damaged = stats.bad_checksums or stats.bad_lengths or stats.given_up or self.parse_errors
        log.log(
            logging.INFO if damaged else logging.DEBUG,
            "F9T link %s closed: %s, %d unparsable frames",
            self.device,
            stats.describe(),
            self.parse_errors,
            extra=fields(device=self.device),
        )

    # ---- asyncio-facing API (call on the loop) ----------------------------------------------

    @property
    def framing(self) -> FramingStats:
        """The reader's framing counters: frames, skipped bytes and why candidates were dropped."""
        return self._splitter.stats

    def wedged(self, now: float | None = None) -> str | None:
        """Why this link's threads stopped making progress, or None.

        The reader turns at least every transport.READ_TIMEOUT_S, so a reader silent for
        WEDGED_S is stuck (in the driver, or on a loop that never runs its callbacks); a write
        that takes WEDGED_S never drains. Either way only a new process helps, and the watchdog stops.
        """
        if self._stop.is_set() or self._port is None:
            return None
        now = time.monotonic() if now is None else now
        reader = self._threads[0] if self._threads else None
        if reader is not None and not reader.is_alive():
            return f"the F9T reader thread of {self.device} has died"
        if now - self._reader_turn > WEDGED_S:
            return f"the F9T reader of {self.device} made no progress for {now - self._reader_turn:.0f} s"
        since = self._writing_since
        if since is not None and now - since > WEDGED_S:
            return f"a write to {self.device} has not finished for {now - since:.0f} s"
        return None

    @property
    def alive(self) -> bool:
        return self._port is not None and not self._stop.is_set() and self.lost_reason is None

    async def request(
        self,
        data: bytes,
        keys: set[RouteKey],
        final: set[RouteKey] | None = None,
        timeout: float = 2.5,
    ) -> list[UbxFrame] | None:
        """Write `data` and collect replies with `keys` until a `final` one (default: any key).

        Only frames received after the write count. Returns None on timeout; raises LinkLost if
        the device goes away or the link closes meanwhile.
        """
        if not self.alive:
            raise LinkLost(self.lost_reason or "link is closed")
        waiter = _Waiter(
            frozenset(keys),
            frozenset(final if final is not None else keys),
            self._loop.create_future(),
        )
        self._waiters.append(waiter)
        self._writes.put((data, waiter))
        try:
            return await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
        except TimeoutError:
            return None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def subscribe(self, maxsize: int) -> Subscription:
        """Register a subscriber and snapshot the cache in one step (both happen on the loop)."""
        sub = Subscription(maxsize, list(self._cache.values()))
        if self.lost_reason is not None:
            sub.end(Ended("lost", self.lost_reason))
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def latest(self, identity: str) -> UbxFrame | None:
        """The newest frame of `identity` (e.g. "TIM-TP") received, if any.

        Safe from another thread (the metrics endpoint's): one dict lookup, atomic under the GIL.
        """
        return self._cache.get(identity)

    @property
    def subscriber_count(self) -> int:
        return sum(1 for s in self._subs if s.ended is None)

    def end_subscriptions(self, kind: str, message: str) -> None:
        for sub in list(self._subs):
            sub.end(Ended(kind, message))
        self._subs.clear()

    # ---- loop-side handling -----------------------------------------------------------------

    def _dispatch(self, seq: int, frame: UbxFrame) -> None:
        rkey = route_key(frame)
        taken = False
        for waiter in list(self._waiters):
            if waiter.future.done() or waiter.sent_seq is None or seq <= waiter.sent_seq:
                continue
            if rkey in waiter.keys:
                waiter.frames.append(frame)
                if rkey in waiter.final:
                    waiter.future.set_result(waiter.frames)
                    self._waiters.remove(waiter)
                taken = True
                break
        self.frames_received += 1
        if taken and frame.msg_cls not in PERIODIC_CLASSES:
            return
        self._cache[frame.identity] = frame
        for sub in self._subs:
            sub.put(frame)

    def _lost(self, reason: str) -> None:
        if self.lost_reason is not None:
            return
        self.lost_reason = reason
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_exception(LinkLost(reason))
        self._waiters.clear()
        self.end_subscriptions("lost", reason)
        if self._on_lost is not None:
            self._on_lost(reason)

    def _post(self, callback: Callable[..., None], *args: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the daemon is exiting
            self._loop.call_soon_threadsafe(callback, *args)

    # ---- threads ----------------------------------------------------------------------------

    def _read_loop(self) -> None:
        """Read whatever is waiting (at least one byte, up to the port timeout), deliver frames."""
        port = self._port
        assert port is not None
        reason: str | None = None
        while reason is None and not self._stop.is_set():
            self._reader_turn = time.monotonic()
            try:
                reason = self._read_once(port)
            except Exception as exc:  # the thread's top level: a bug makes the link unusable,
                # and the daemon re-opens it; any exception must end here, not kill the thread.
                log.exception(
                    "F9T reader of %s failed", self.device, extra=fields(device=self.device)
                )
                reason = f"reader failed: {exc!r}"
        if reason is not None and not self._stop.is_set():
            log.error(
                "F9T device %s lost: %s", self.device, reason, extra=fields(device=self.device)
            )
            self._stop.set()
            self._writes.put(None)
            self._post(self._lost, reason)

    def _read_once(self, port: Transport) -> str | None:
        """One read and the frames it completes; why the device is lost, or None."""
        try:
            data = port.read(min(max(1, port.in_waiting), READ_CHUNK_MAX))
        except port.device_errors as exc:
            return str(exc) or type(exc).__name__
        frames: list[RawFrame] = []
        if data:
            self._bytes_read += len(data)
            self._reads.append((self._bytes_read, time.time()))
            frames = self._splitter.feed(data)
        return self._deliver(frames + self._give_up_if_stale(time.monotonic()))

    def _give_up_if_stale(self, now: float) -> list[RawFrame]:
        """Release the frames behind an incomplete candidate that has waited too long.

        Without this a damaged header claiming up to 4 KiB would hold every frame behind it until
        that many bytes arrived: more than a minute at a timing receiver's usual output rate.
        """
        stats = self._splitter.stats
        if stats.pending_bytes < len(SYNC):
            self._waiting = None
            return []
        if self._waiting is None or self._waiting[0] != stats.buffer_start:
            self._waiting = (stats.buffer_start, now)
            return []
        if now - self._waiting[1] < self._max_frame_wait:
            return []
        self._waiting = None
        log.debug("gave up an incomplete frame after %.1f s", self._max_frame_wait)
        return self._splitter.give_up()

    def _received_at(self, end: int) -> float:
        """Host time of the read that delivered stream byte `end - 1` (a frame's last byte).

        Usually the latest read; earlier when a bogus header held the frame back meanwhile.
        """
        while self._reads[0][0] < end:
            self._reads.popleft()
        return self._reads[0][1]

    def _deliver(self, frames: list[RawFrame]) -> str | None:
        """Parse and hand each frame to the loop in order; a reason if the port looks broken."""
        for raw in frames:
            rx_time = self._received_at(raw.end)
            try:
                frame = UbxFrame.from_raw(raw.raw, rx_time)
            except PARSE_ERRORS as exc:  # a checksum-valid frame pyubx2 cannot handle: skip it
                self.parse_errors += 1
                self._consecutive_errors += 1
                log.debug("skipped unparsable %s frame: %s", raw.identity, exc)
                if self._consecutive_errors >= MAX_CONSECUTIVE_ERRORS:
                    return f"{self._consecutive_errors} unparsable frames in a row, last: {exc}"
                continue
            self._consecutive_errors = 0
            with self._seq_lock:
                seq = next(self._seq)
                self._last_seq = seq
            self._post(self._dispatch, seq, frame)
        start = self._splitter.stats.buffer_start
        while self._reads and self._reads[0][0] <= start:
            self._reads.popleft()  # wholly before the splitter's buffer: no frame ends there
        return None

    def _write_loop(self) -> None:
        while True:
            item = self._writes.get()
            if item is None or self._stop.is_set():
                return
            data, waiter = item
            port = self._port
            if port is None:
                return
            if waiter is not None:
                with self._seq_lock:
                    waiter.sent_seq = self._last_seq
            self._writing_since = time.monotonic()
            try:
                port.write(data)
            except port.device_errors as exc:
                reason = f"write failed: {exc}"
                if not self._stop.is_set():
                    log.error(
                        "F9T device %s lost: %s",
                        self.device,
                        reason,
                        extra=fields(device=self.device),
                    )
                    self._stop.set()
                    try:
                        port.cancel_read()
                    except port.device_errors as exc:
                        log.debug("cancel_read failed: %s", exc)
                    self._post(self._lost, reason)
                return
            self._writing_since = None
