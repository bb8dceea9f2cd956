"""The uds simulator (Hashpipe emulator) against a real Unix listener parsed by the daemon's framer.

The listener reads with `HashpipeFramer`, the same parser the daemon uses, so these tests prove
that what the emulator sends is what the daemon understands, torn frames included.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from panoseti_appliance import pff
from panoseti_appliance.config import SimulatorConfig
from panoseti_appliance.daqdata.server.sources.hashpipe import HashpipeFramer
from panoseti_appliance.daqdata.sim.hashpipe import HashpipeEmitter, HashpipeFaults
from panoseti_appliance.daqdata.sim.simulator import Simulator
from panoseti_appliance.products import BY_NAME, IMG16, PH256
from tests.producers import until


class Listener:
    """One listening socket per data product; every connection parsed with HashpipeFramer."""

    def __init__(self, tmp_path: Path, products: tuple[str, ...], read: bool = True) -> None:
        self.template = str(tmp_path / "hp.{dp}.sock")
        self.read = read
        self.frames: dict[str, list[tuple[int, dict[str, Any], bytes]]] = {p: [] for p in products}
        self.framers: list[HashpipeFramer] = []
        self.accepted: dict[str, int] = dict.fromkeys(products, 0)
        self.conns: list[socket.socket] = []
        self._socks: dict[str, socket.socket] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def bind(self, dp: str) -> None:
        path = self.template.format(dp=dp)
        with contextlib.suppress(FileNotFoundError):
            Path(path).unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.bind(path)
        sock.listen(8)
        sock.setblocking(False)
        self._socks[dp] = sock
        self._tasks.append(asyncio.create_task(self._accept(dp, sock)))

    async def _accept(self, dp: str, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(sock)
            self.accepted[dp] += 1
            self.conns.append(conn)
            if self.read:
                self._tasks.append(asyncio.create_task(self._read(dp, conn)))

    async def _read(self, dp: str, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        framer = HashpipeFramer(BY_NAME[dp])
        self.framers.append(framer)
        while data := await loop.sock_recv(conn, 1 << 16):
            self.frames[dp].extend(framer.feed(data))

    def drop_connections(self) -> None:
        for conn in self.conns:
            conn.close()
        self.conns.clear()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        self.drop_connections()
        for sock in self._socks.values():
            sock.close()


@pytest.fixture
async def listener(tmp_path: Path) -> AsyncIterator[Listener]:
    lst = Listener(tmp_path, ("img16", "ph256"))
    lst.bind("img16")
    lst.bind("ph256")
    yield lst
    await lst.close()


def sim_config(**kw: Any) -> SimulatorConfig:
    base: dict[str, Any] = {"mode": "uds", "module_ids": [1, 254], "update_interval_seconds": 0}
    base.update(kw)
    return SimulatorConfig.model_validate(base)


async def test_each_module_reaches_each_socket_with_current_wr_time(listener: Listener) -> None:
    sim = Simulator(
        sim_config(frame_limit=20),
        socket_template=listener.template,
        pipe_name="p",
        rpc_target=None,
    )
    before = time.time_ns()
    await sim.start()
    try:
        await sim.wait()
        await until(lambda: all(len(f) == 40 for f in listener.frames.values()), "40 frames per dp")
    finally:
        await sim.stop()
    assert sim.steps == 20
    assert sim.stats.snapshot() == {
        "img16": {"connects": 1, "sent": 40},
        "ph256": {"connects": 1, "sent": 40},
    }
    for dp, frames in listener.frames.items():
        assert [m for m, _, _ in frames[:4]] == [1, 254, 1, 254]
        assert all(len(pixels) == BY_NAME[dp].bytes_per_image for _, _, pixels in frames)
        for _, header, _ in frames:
            wr = pff.header_wr_time(header)
            assert not wr.desync, header
            assert wr.unix_ns is not None
            assert before // 1000 * 1000 <= wr.unix_ns <= time.time_ns()
    assert all(f.drops == 0 for f in listener.framers)


async def test_original_timestamps_are_replayed_when_asked(listener: Listener) -> None:
    sim = Simulator(
        sim_config(frame_limit=2, replay_original_timestamps=True, module_ids=[7]),
        socket_template=listener.template,
        pipe_name="p",
        rpc_target=None,
    )
    await sim.start()
    await sim.wait()
    await until(lambda: len(listener.frames["ph256"]) == 2, "2 ph256 frames")
    await sim.stop()
    first = listener.frames["ph256"][0][1]
    # The bundled ph256 sample is the real, WR-desynchronised recording.
    assert first["tv_sec"] == 1754112728
    assert first["pkt_num"] == 5124
    assert pff.header_wr_time(first).desync


async def test_frames_are_dropped_until_the_socket_exists_then_it_connects(tmp_path: Path) -> None:
    lst = Listener(tmp_path, ("ph256",))
    emitter = HashpipeEmitter(["ph256"], lst.template)
    header = {"quabo_num": 0, "pkt_num": 1, "pkt_tai": 2, "pkt_nsec": 3, "tv_sec": 4, "tv_usec": 5}
    pixels = bytes(PH256.bytes_per_image)
    try:
        await emitter.emit(5, PH256, header, pixels, 0)
        assert emitter.stats.get("ph256", "disconnected") == 1
        lst.bind("ph256")
        await emitter.emit(5, PH256, header, pixels, 1)
        await until(lambda: len(lst.frames["ph256"]) == 1, "one frame")
        assert lst.frames["ph256"][0] == (5, header, pixels)
        # A product the emulator is not configured for is counted, not sent.
        await emitter.emit(5, IMG16, {}, bytes(IMG16.bytes_per_image), 2)
        assert emitter.stats.get("img16", "not_configured") == 1
    finally:
        await emitter.close()
        await lst.close()


async def test_reconnects_after_the_daemon_drops_the_connection(listener: Listener) -> None:
    emitter = HashpipeEmitter(["ph256"], listener.template)
    header = {"quabo_num": 0, "pkt_num": 1, "pkt_tai": 2, "pkt_nsec": 3, "tv_sec": 4, "tv_usec": 5}
    pixels = bytes(range(256)) * 2
    try:
        await emitter.emit(1, PH256, header, pixels, 0)
        await until(lambda: len(listener.frames["ph256"]) == 1, "first frame")
        listener.drop_connections()
        # The first sends after the peer closed fail (EPIPE/ECONNRESET); a later one reconnects.
        n = 1
        while listener.accepted["ph256"] < 2:
            await emitter.emit(1, PH256, header, pixels, n)
            n += 1
            assert n < 10_000, "never reconnected"
            await asyncio.sleep(0.01)
        await emitter.emit(1, PH256, header, pixels, n)
        await until(lambda: len(listener.frames["ph256"]) >= 2, "a frame after reconnect")
        assert emitter.stats.get("ph256", "send_errors") >= 1
        assert emitter.stats.get("ph256", "connects") == 2
    finally:
        await emitter.close()


async def test_a_daemon_that_does_not_read_makes_frames_busy_not_blocking(tmp_path: Path) -> None:
    lst = Listener(tmp_path, ("img16",), read=False)
    lst.bind("img16")
    sim = Simulator(
        sim_config(frame_limit=400, uds_data_products=["img16"]),
        socket_template=lst.template,
        pipe_name="p",
        rpc_target=None,
    )
    try:
        await sim.start()
        await sim.wait()  # finishes although nobody reads: sends never block
    finally:
        await sim.stop()
        await lst.close()
    counts = sim.stats.snapshot()["img16"]
    assert counts["busy"] > 0
    assert counts["sent"] + counts["busy"] + counts.get("torn", 0) == 800
    assert counts["sent"] > 0
    assert sim.stats.get("ph256", "not_configured") == 800


async def test_injected_torn_frames_are_detected_and_the_rest_recovered(listener: Listener) -> None:
    sim = Simulator(
        sim_config(frame_limit=31, module_ids=[3], uds_data_products=["ph256"]),
        socket_template=listener.template,
        pipe_name="p",
        rpc_target=None,
        faults=HashpipeFaults(tear_every=5, tear_bytes=300),
    )
    await sim.start()
    await sim.wait()
    await until(lambda: len(listener.frames["ph256"]) == 25, "the 25 untorn frames")
    await sim.stop()
    # Frames 5, 10, ..., 30 are torn; frame 31 follows the last one, so all 6 are detected.
    assert sim.stats.get("ph256", "torn") == 6
    assert sim.stats.get("ph256", "sent") == 25
    assert sum(f.stats["torn"] for f in listener.framers) == 6
    assert {m for m, _, _ in listener.frames["ph256"]} == {3}


async def test_injected_drops_and_idle_reconnects(listener: Listener) -> None:
    faults = HashpipeFaults(drop_every=2, idle_reconnect_seconds=0.05)
    emitter = HashpipeEmitter(["ph256"], listener.template, faults)
    header = {"quabo_num": 0, "pkt_num": 1, "pkt_tai": 2, "pkt_nsec": 3, "tv_sec": 4, "tv_usec": 5}
    pixels = bytes(PH256.bytes_per_image)
    try:
        for n in range(4):
            await emitter.emit(1, PH256, header, pixels, n)
        assert emitter.stats.get("ph256", "injected_drops") == 2
        assert emitter.stats.get("ph256", "sent") == 2
        idle_since = time.monotonic()
        await until(lambda: time.monotonic() - idle_since > 0.2, "idle time to pass")
        await emitter.emit(1, PH256, header, pixels, 4)  # frame 5: sent after reconnecting
        assert emitter.stats.get("ph256", "idle_reconnects") == 1
        await until(lambda: listener.accepted["ph256"] == 2, "the second connection")
        await until(lambda: len(listener.frames["ph256"]) == 3, "3 frames")
    finally:
        await emitter.close()


def test_fault_options_are_validated() -> None:
    with pytest.raises(ValueError, match="tear_every must be >= 0"):
        HashpipeFaults(tear_every=-1)
    with pytest.raises(ValueError, match="idle_reconnect_seconds must be > 0"):
        HashpipeFaults(idle_reconnect_seconds=0)
