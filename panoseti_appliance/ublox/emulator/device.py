"""A faithful ZED-F9T timing receiver on a pseudo-terminal, for tests and the demo.

The daemon opens `device_path` with pyserial exactly as it opens `/dev/ttyACM0`, so the whole path
(port ownership, framing, reply routing, unplug detection) is exercised for real. With `tty_path`
the receiver serves an existing serial device instead of a pty: the gadget side (`/dev/ttyGS0`) of
a USB CDC-ACM link, so the host side is a real `/dev/ttyACMn` that udev and systemd see. The emulator
answers MON-VER, SEC-UNIQID, CFG-VALSET (with transactions) and CFG-VALGET like the receiver,
emits TIM-TP / NAV-TIMEUTC / NAV-PVT at the rates configured through CFG_MSGOUT_UBX_*_USB, and
has fault hooks for every failure InitF9t must report (wrong model or UID, NAK, stored value
mismatch, silence, slow replies, corrupt checksums, line noise, unplug and re-plug).

What the receiver says is `F9tReceiver`, which knows nothing of ptys: the answer to each frame the
host writes and the output of each epoch. `F9tEmulator` carries its bytes over the pty or tty,
`memory.MemoryReceiver` over an in-process transport the daemon's link opens directly.

Time: the emulated receiver clock starts at the current UTC second and advances one second per
epoch, so with `epoch_s` < 1 the output is a fast-forwarded but otherwise realistic 1 Hz stream.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import random
import select
import threading
import time
import tty
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Self, TypedDict, Unpack

from panoseti_appliance.ublox.emulator import f9tmessages as msg
from panoseti_appliance.ublox.emulator.f9tregisters import KeyTable, RegisterStore
from panoseti_appliance.ublox.ubxframes import FrameSplitter, RawFrame, build_frame

log = logging.getLogger(__name__)

#: RAM keys that set the output rate (every N-th epoch, 0 = off) of each periodic message.
MSGOUT_USB_KEYS: dict[tuple[int, int], int] = {
    msg.TIM_TP: 0x20910180,
    msg.NAV_TIMEUTC: 0x2091005E,
    msg.NAV_PVT: 0x20910009,
}
READ_CHUNK = 4096
POLL_INTERVAL_S = 0.2
#: Least time between two attempts to open a lost `tty_path`, so a link that keeps failing is
#: retried a few times a second instead of in a busy loop.
REOPEN_INTERVAL_S = 0.2
DEFAULT_UID = 0xDF03A241BC
DEFAULT_LLH = (37.4219999, -122.0840575, 12.345)


def load_replay(path: str | Path) -> list[bytes]:
    """The whole frames of a `ubx_packets.jsonl` capture, in order, each checked for validity."""
    frames: list[bytes] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"replay file {path} line {lineno}"
            try:
                raw = base64.b64decode(json.loads(line)["payload_b64"], validate=True)
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(
                    f'{where}: expected {{"identity": …, "payload_b64": <base64 frame>}}: {exc}'
                ) from exc
            parsed = FrameSplitter().feed(raw)
            if len(parsed) != 1 or parsed[0].raw != raw:
                raise ValueError(
                    f"{where}: payload_b64 is not one whole UBX frame with a valid checksum"
                )
            frames.append(raw)
    if not frames:
        raise ValueError(f"replay file {path}: no frames")
    return frames


def replay_epochs(frames: list[bytes]) -> list[list[bytes]]:
    """Group captured frames into epochs: a new epoch starts when a message type repeats."""
    epochs: list[list[bytes]] = [[]]
    seen: set[bytes] = set()
    for raw in frames:
        kind = raw[2:4]
        if kind in seen:
            epochs.append([])
            seen.clear()
        epochs[-1].append(raw)
        seen.add(kind)
    return epochs


def open_raw_tty(path: str) -> int:
    """Open an existing terminal device non-blocking, without making it our controlling tty, raw.

    Non-blocking because a gadget tty whose host side is not reading (or not bound at all) stops
    taking bytes: output is then dropped, as a real receiver drops what nobody collects, instead of
    stalling the receiver. Raw on every open because a tty reopened after a hang-up starts again
    from its driver's defaults, whose echo would send the host's own requests back to it.
    """
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        if not os.isatty(fd):
            raise ValueError(f"{path} is not a terminal device; give a tty such as /dev/ttyGS0")
        tty.setraw(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_some(fd: int) -> tuple[bytes, str]:
    """The bytes waiting on a non-blocking fd, and why the line is gone if it is ("" if not)."""
    try:
        data = os.read(fd, READ_CHUNK)
    except BlockingIOError:
        return b"", ""
    except OSError as exc:  # EIO: the other end of a tty went away
        return b"", exc.strerror or str(exc)
    return data, "" if data else "hang-up (end of file)"


def _swap_symlink(link: Path, target: str) -> None:
    """Point `link` at `target` atomically (a temporary symlink renamed over the old one)."""
    if link.exists() and not link.is_symlink():
        raise ValueError(f"link {link} exists and is not a symlink; choose a free path for --link")
    tmp = link.with_name(f".{link.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


class ReceiverOptions(TypedDict, total=False):
    """What every emulated receiver takes, whatever carries its bytes (see F9tReceiver)."""

    model: str
    unique_id: int
    epoch_s: float
    register_csv: str | Path | None
    replay: str | Path | None
    position_llh: tuple[float, float, float]


class F9tReceiver(ABC):
    """What the emulated receiver says, whatever carries its bytes.

    The answer to each whole frame the host writes (`_handle`), the output of each epoch
    (`_epoch_loop`, run in a thread the carrier starts), the register store and the fault hooks,
    which may be changed while it runs. A carrier (the pty, the in-memory transport) only moves
    bytes: it hands `_handle` the frames it receives and puts what `_transmit` gets on its wire.
    """

    def __init__(
        self,
        *,
        model: str = "ZED-F9T",
        unique_id: int = DEFAULT_UID,
        epoch_s: float = 1.0,
        register_csv: str | Path | None = None,
        replay: str | Path | None = None,
        position_llh: tuple[float, float, float] = DEFAULT_LLH,
    ) -> None:
        if not epoch_s > 0:
            raise ValueError(f"epoch_s must be > 0 seconds, got {epoch_s}")
        if not 0 <= unique_id < 1 << 40:
            raise ValueError(f"unique_id must fit 5 bytes (10 hex digits), got 0x{unique_id:X}")
        self.model = model
        self.unique_id = unique_id
        self.epoch_s = epoch_s
        self.position_llh = position_llh
        table = KeyTable.from_csv(register_csv) if register_csv else KeyTable.from_database()
        self.store = RegisterStore(table)
        self._replay = replay_epochs(load_replay(replay)) if replay else None
        # Fault injection.
        self.nak_keys: set[int] = set()
        self.mismatch: dict[int, Any] = {}
        self.silent = False
        self.reply_delay_s = 0.0
        self.corrupt_checksums = False
        self.noise = False
        self.received: list[tuple[str, bytes]] = []

        self._emit_lock = threading.Lock()
        self._stop = threading.Event()
        self._rng = random.Random(unique_id)
        self._clock_s = float(int(time.time()))  # the receiver's UTC second of the current epoch

    def value(self, key: int | str, layer: str = "RAM") -> Any:
        """The value of `key` (id or name) that a VALGET on `layer` would report (None if absent)."""
        return self.store.value(key, layer)

    @abstractmethod
    def start(self) -> None:
        """Start carrying bytes and emitting epochs."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the threads and release what the carrier holds."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @abstractmethod
    def _transmit(self, data: bytes) -> None:
        """Put bytes on the wire to the host; drop them when nobody can take them now."""

    def _send(self, frame: bytes) -> None:
        """Send one frame (damaged, or after noise, when those faults are on)."""
        if self.corrupt_checksums:
            frame = frame[:-1] + bytes((frame[-1] ^ 0xFF,))
        if self.noise:
            frame = self._noise() + frame
        self._transmit(frame)

    def _noise(self) -> bytes:
        """An NMEA sentence and a few garbage bytes that contain no UBX/NMEA/RTCM sync."""
        garbage = bytes(self._rng.choice(range(0x20, 0x7F)) for _ in range(self._rng.randint(1, 8)))
        garbage = garbage.replace(b"$", b"#")
        return msg.nmea_sentence("GNTXT,01,01,02,emulated receiver") + garbage

    # -- receive side ------------------------------------------------------------------------

    def _handle(self, frame: RawFrame) -> None:
        """Record a frame the host wrote and send the receiver's answers to it."""
        self.received.append((frame.identity, frame.raw))
        if self.silent:
            return
        with self._emit_lock:
            try:
                replies = self._answer(frame)
            except ValueError as exc:  # a fault hook set to something the key cannot hold
                log.error("not answering %s: %s", frame.identity, exc)
                return
        if replies and self.reply_delay_s > 0:
            self._stop.wait(self.reply_delay_s)
        for reply in replies:
            self._send(reply)

    def _answer(self, frame: RawFrame) -> list[bytes]:
        kind = (frame.cls_id, frame.msg_id)
        if kind == msg.CFG_VALSET:
            ok = self.store.valset(
                frame.payload, unknown=set(self.nak_keys), mismatch=dict(self.mismatch)
            )
            return [msg.ack(*kind, ok)]
        if kind == msg.CFG_VALGET:
            answer = self.store.valget(frame.payload, unknown=set(self.nak_keys))
            if answer is None:
                return [msg.ack(*kind, False)]
            return [build_frame(*kind, answer), msg.ack(*kind, True)]
        if frame.cls_id == msg.CLS_CFG:
            return [msg.ack(*kind, False)]
        if frame.payload:
            return []
        if kind == msg.MON_VER:
            return [msg.mon_ver(self.model)]
        if kind == msg.SEC_UNIQID:
            return [msg.sec_uniqid(self.unique_id)]
        if kind in MSGOUT_USB_KEYS:
            return [self._periodic(kind)]
        return []

    # -- transmit side -----------------------------------------------------------------------

    def _periodic(self, kind: tuple[int, int]) -> bytes:
        """The current epoch's instance of TIM-TP, NAV-TIMEUTC or NAV-PVT."""
        epoch = self._clock_s
        nano = 370_000 + self._rng.randint(-2_000, 2_000)
        t_acc = self._rng.randint(58, 94)
        if kind == msg.TIM_TP:
            return msg.tim_tp(epoch + 1, self._rng.randint(-4_000, 4_000))
        if kind == msg.NAV_TIMEUTC:
            return msg.nav_timeutc(epoch, nano, t_acc)
        return msg.nav_pvt(epoch, nano, t_acc, self.position_llh)

    def _epoch_loop(self) -> None:
        start = time.monotonic()
        index = 0
        while not self._stop.wait(max(0.0, start + (index + 1) * self.epoch_s - time.monotonic())):
            index += 1
            self._clock_s += 1.0
            if self.silent:
                continue
            if self._replay is not None:
                for raw in self._replay[(index - 1) % len(self._replay)]:
                    self._send(raw)
                continue
            # Under the emit lock a VALSET is applied either before this epoch or after it, so
            # nothing sent after its ACK-ACK reflects the old output rates.
            with self._emit_lock:
                for kind, key_id in MSGOUT_USB_KEYS.items():
                    rate = self.store.raw_ram(key_id)
                    if rate and index % rate == 0:
                        self._send(self._periodic(kind))


class F9tEmulator(F9tReceiver):
    """The emulated receiver on a pty, or on `tty_path`. Fault hooks may be changed while it runs."""

    def __init__(
        self,
        *,
        link: str | Path | None = None,
        tty_path: str | Path | None = None,
        **options: Unpack[ReceiverOptions],
    ) -> None:
        if tty_path is not None and link is not None:
            raise ValueError(
                "link is a symlink to the emulator's own pty; with tty_path the device is that tty"
            )
        super().__init__(**options)
        self.link = Path(link) if link is not None else None
        self.tty_path = str(tty_path) if tty_path is not None else None

        self.device_path = ""
        self._pty_path = ""
        self._io_lock = threading.Lock()
        self._fd: int | None = None  # the receiver's end: the pty master or the opened tty_path
        self._slave: int | None = None  # pty mode: the slave, kept open (see docs/emulator.md)
        self._reopen_at = 0.0  # tty mode: monotonic time of the next attempt to open a lost link
        self._link_lost = False
        self._generation = 0
        self._splitter = FrameSplitter()
        self._wake_r, self._wake_w = -1, -1
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Open the pty or `tty_path` (raw mode) and start the RX and epoch threads."""
        if self._threads:
            raise RuntimeError("emulator already started")
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        try:
            self._plug()
        except BaseException:
            self.stop()  # release the pty and pipe fds already opened
            raise
        self._threads = [
            threading.Thread(target=self._rx_loop, name="f9t-emu-rx", daemon=True),
            threading.Thread(target=self._epoch_loop, name="f9t-emu-epoch", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.info("emulated %s (uid %010X) on %s", self.model, self.unique_id, self.device_path)

    def stop(self) -> None:
        """Stop the threads, close every fd and remove the symlink this emulator made."""
        self._stop.set()
        self._wake()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        self._unplug_fds()
        self._remove_link()
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def unplug(self) -> None:
        """Vanish like a USB unplug: close the pty (client reads raise) and remove the symlink."""
        self._pty_only("unplug")
        self._unplug_fds()
        self._remove_link()
        self._wake()
        log.info("unplugged %s", self.device_path)

    def replug(self) -> None:
        """Come back on a new pty and swap the symlink to it atomically (needs `link`).

        Like a real power cycle, RAM is rebuilt from defaults, FLASH and BBR, so a setting written
        only to RAM is lost; the daemon re-runs its InitF9t plan after a re-plug.
        """
        self._pty_only("replug")
        if self.link is None:
            raise ValueError("replug needs a stable symlink: create the emulator with link=PATH")
        self._unplug_fds()
        self.store.power_cycle()
        self._plug()
        self._wake()
        log.info("re-plugged %s -> %s", self.device_path, self._pty_path)

    def _pty_only(self, what: str) -> None:
        if self.tty_path is not None:
            raise ValueError(
                f"{what} acts on the emulator's own pty; on tty_path {self.tty_path} unplug the"
                " real link instead (e.g. unbind the USB gadget)"
            )

    # -- pty and tty plumbing ----------------------------------------------------------------

    def _plug(self) -> None:
        if self.tty_path is not None:
            self._attach(open_raw_tty(self.tty_path), None, self.tty_path)
            self.device_path = self.tty_path
            return
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        path = os.ttyname(slave)
        self._attach(master, slave, path)
        if self.link is not None:
            _swap_symlink(self.link, path)
            self.device_path = str(self.link)
        else:
            self.device_path = path

    def _attach(self, fd: int, slave: int | None, path: str) -> None:
        with self._io_lock:
            self._fd, self._slave = fd, slave
            self._generation += 1
            self._splitter = FrameSplitter()
            self._pty_path = path

    def _unplug_fds(self) -> None:
        with self._io_lock:
            fds = (self._fd, self._slave)
            self._fd = self._slave = None
            self._generation += 1
        for fd in fds:
            if fd is not None:
                os.close(fd)

    def _lose_link(self, generation: int, why: str) -> None:
        """tty mode: the link hung up (gadget unbound, pty master closed); close it, retry later."""
        with self._io_lock:
            if generation != self._generation or self._fd is None:
                return
            fd, self._fd = self._fd, None
            self._generation += 1
        os.close(fd)
        self._reopen_at = time.monotonic() + REOPEN_INTERVAL_S
        self._link_lost = True
        log.warning("link %s lost (%s); reopening it until it is back", self.tty_path, why)

    def _reopen(self) -> None:
        """tty mode: one attempt to open the lost link again (a failure is retried later)."""
        assert self.tty_path is not None
        self._reopen_at = time.monotonic() + REOPEN_INTERVAL_S
        try:
            fd = open_raw_tty(self.tty_path)
        except (OSError, ValueError) as exc:
            log.debug("cannot reopen %s yet: %s", self.tty_path, exc)
            return
        self._attach(fd, None, self.tty_path)
        if self._link_lost:
            log.info("link %s is back", self.tty_path)
            self._link_lost = False

    def _remove_link(self) -> None:
        if self.link is not None and self.link.is_symlink():
            with contextlib.suppress(OSError):
                if os.readlink(self.link) == self._pty_path:
                    self.link.unlink()

    def _wake(self) -> None:
        if self._wake_w >= 0:
            with contextlib.suppress(BlockingIOError):
                os.write(self._wake_w, b"x")

    def _transmit(self, data: bytes) -> None:
        """Write to the pty or tty; dropped if unplugged or the client is not reading."""
        with self._io_lock:
            if self._fd is None:
                return
            # EAGAIN: nobody reads (dropped); EIO: a hung-up tty, which the RX loop notices.
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self._fd, data)

    # -- receive side ------------------------------------------------------------------------

    def _rx_loop(self) -> None:
        while not self._stop.is_set():
            with self._io_lock:
                fd, generation = self._fd, self._generation
            timeout = POLL_INTERVAL_S
            if fd is None and self.tty_path is not None:
                timeout = self._reopen_at - time.monotonic()
                if timeout <= 0:
                    self._reopen()
                    continue
            watch = [self._wake_r] if fd is None else [fd, self._wake_r]
            try:
                readable, _, _ = select.select(watch, [], [], timeout)
            except (OSError, ValueError):  # the fd was closed by unplug() meanwhile
                continue
            if self._wake_r in readable:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 64)
            if fd is None or fd not in readable:
                continue
            with self._io_lock:
                if generation != self._generation:
                    continue
                data, gone = _read_some(fd)
                frames = self._splitter.feed(data)
            # Only a tty_path hangs up: the pty mode keeps its own slave open.
            if gone and self.tty_path is not None:
                self._lose_link(generation, gone)
            for frame in frames:
                self._handle(frame)
