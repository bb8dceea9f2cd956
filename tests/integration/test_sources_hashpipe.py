"""HashpipeListener with real Unix sockets in tmp_path and Hashpipe-like producers."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import logging
import os
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from panoseti_appliance.config.models import HashpipeSourceConfig
from panoseti_appliance.daqdata.server.frame import Frame
from panoseti_appliance.daqdata.server.sources.hashpipe import HashpipeListener
from panoseti_appliance.runtime.inherited import Inherited, inspect_fd
from panoseti_appliance.runtime.listen import ListenError
from tests.producers import (
    WAIT,
    Collected,
    HashpipeProducer,
    SentFrame,
    run_source,
    until,
)


def _cfg(tmp_path: Path, **kw: Any) -> HashpipeSourceConfig:
    kw.setdefault("data_products", ["ph256", "img16"])
    return HashpipeSourceConfig(socket_template=str(tmp_path / "hp.dp_{dp}.sock"), **kw)


@contextlib.asynccontextmanager
async def running(listener: HashpipeListener) -> AsyncIterator[Collected]:
    """The listener running, its frames collected; closed (socket files removed) on exit."""
    try:
        async with run_source(listener) as got:
            yield got
    finally:
        listener.close()


async def _producer(path: str, dp: str) -> HashpipeProducer:
    return await asyncio.to_thread(HashpipeProducer, path, dp)


def _matches(frame: Frame, sent: SentFrame) -> bool:
    return (
        frame.module_id == sent.module
        and frame.pixels == sent.pixels
        and frame.header == json.loads(sent.header)
    )


def test_open_binds_each_product_with_mode(tmp_path: Path) -> None:
    listener = HashpipeListener(_cfg(tmp_path, socket_mode=0o640))
    listener.open()
    try:
        paths = listener.paths()
        assert paths == {
            "ph256": str(tmp_path / "hp.dp_ph256.sock"),
            "img16": str(tmp_path / "hp.dp_img16.sock"),
        }
        for path in paths.values():
            st = os.stat(path)
            assert stat.S_ISSOCK(st.st_mode)
            assert stat.S_IMODE(st.st_mode) == 0o640
    finally:
        listener.close()
    assert not any(Path(p).exists() for p in paths.values())


def test_receive_buffer_is_at_least_configured(tmp_path: Path) -> None:
    listener = HashpipeListener(_cfg(tmp_path, receive_buffer_bytes=300_000))
    listener.open()
    try:
        for sock in listener.listening_sockets().values():
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 300_000
    finally:
        listener.close()


def test_receive_buffer_above_the_kernel_cap_is_forced_or_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Beyond net.core.rmem_max only CAP_NET_ADMIN helps; without it the operator is told how."""
    want = 2 * int(Path("/proc/sys/net/core/rmem_max").read_text()) + 4096
    listener = HashpipeListener(_cfg(tmp_path, data_products=["img8"], receive_buffer_bytes=want))
    with caplog.at_level(logging.WARNING):
        listener.open()
    try:
        got = listener.listening_sockets()["img8"].getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    finally:
        listener.close()
    warned = [r.getMessage() for r in caplog.records if "net.core.rmem_max" in r.getMessage()]
    if got >= want:
        assert warned == []
    else:
        assert len(warned) == 1
        assert f"SO_RCVBUF is {got} bytes, below the configured {want}" in warned[0]


def test_socket_group_is_applied(tmp_path: Path) -> None:
    group = grp.getgrgid(os.getgid()).gr_name
    listener = HashpipeListener(_cfg(tmp_path, socket_group=group))
    listener.open()
    try:
        assert all(os.stat(p).st_gid == os.getgid() for p in listener.paths().values())
    finally:
        listener.close()


def test_unknown_group_is_a_clear_error(tmp_path: Path) -> None:
    listener = HashpipeListener(_cfg(tmp_path, socket_group="no-such-group-xyz"))
    with pytest.raises(ListenError, match=r"socket_group 'no-such-group-xyz' does not exist"):
        listener.open()
    assert not any(tmp_path.glob("*.sock"))


def test_stale_socket_is_replaced(tmp_path: Path) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "hp.dp_ph256.sock"))
    stale.close()  # the file stays behind, nobody listens
    listener = HashpipeListener(_cfg(tmp_path))
    listener.open()
    listener.close()


def test_non_socket_path_fails_naming_dp_and_path(tmp_path: Path) -> None:
    path = tmp_path / "hp.dp_img16.sock"
    path.write_text("not a socket")
    listener = HashpipeListener(_cfg(tmp_path))
    with pytest.raises(ListenError) as err:
        listener.open()
    assert str(err.value) == (
        f"uds source img16 (daqdata.hashpipe.socket_template): {path} exists and is not a "
        "socket; move that file away or choose another path (it is never deleted for you)"
    )
    assert path.read_text() == "not a socket"
    # The ph256 socket bound before the failure is cleaned up again.
    assert not (tmp_path / "hp.dp_ph256.sock").exists()


def test_socket_in_use_is_refused(tmp_path: Path) -> None:
    first = HashpipeListener(_cfg(tmp_path))
    first.open()
    try:
        with pytest.raises(ListenError, match="in use by another running server"):
            HashpipeListener(_cfg(tmp_path)).open()
    finally:
        first.close()


def test_missing_directory_fails_clearly(tmp_path: Path) -> None:
    cfg = HashpipeSourceConfig(socket_template=str(tmp_path / "nope" / "{dp}.sock"))
    with pytest.raises(ListenError, match=r"uds source img8 .* directory .*nope does not exist"):
        HashpipeListener(cfg).open()


async def test_frames_from_several_modules_and_products(tmp_path: Path) -> None:
    listener = HashpipeListener(_cfg(tmp_path))
    async with running(listener) as r:
        paths = listener.paths()
        ph = await _producer(paths["ph256"], "ph256")
        img = await _producer(paths["img16"], "img16")
        sent = []
        for round_ in range(3):
            for module in (1, 2, 300):
                sent.append(await asyncio.to_thread(ph.send, module))
                sent.append(await asyncio.to_thread(img.send, module + round_ * 0))
        await until(lambda: len(r.frames) == len(sent), "all frames")
        ph.close()
        img.close()
        for module in (1, 2, 300):
            for dp in ("ph256", "img16"):
                got = r.of(module, dp)
                assert [f.frame_number for f in got] == [0, 1, 2]
                assert all(f.file == f"uds_{dp}" for f in got)
        assert all(any(_matches(f, s) for f in r.frames) for s in sent)
        assert listener.stats["frames_in"] == len(sent)


async def test_torn_and_garbage_then_valid_frames_arrive(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A short writev is followed by the producer's next frame; noise can come at any time."""
    caplog.set_level(logging.INFO, logger="panoseti_appliance.daqdata.server.sources.hashpipe")
    listener = HashpipeListener(_cfg(tmp_path))
    async with running(listener) as r:
        p = await _producer(listener.paths()["ph256"], "ph256")
        first = await asyncio.to_thread(p.send, 7)
        await until(lambda: len(r.frames) == 1, "first frame")
        # Burst 1: a frame torn in its pixels, then the next frame.
        await asyncio.to_thread(p.send_torn, 7, 300)
        after_torn = await asyncio.to_thread(p.send, 7)
        await until(lambda: len(r.frames) == 2, "frame after the torn one")
        # Burst 2: noise, a frame torn in its header, more noise, then frames.
        await asyncio.to_thread(p.send_garbage, 2000, 1)
        await asyncio.to_thread(p.send_torn, 8, 40)
        await asyncio.to_thread(p.send_garbage, 50, 2)
        good = [await asyncio.to_thread(p.send, 7) for _ in range(3)]
        await until(lambda: len(r.frames) == 5, "frames after the damage")
        p.close()
        assert all(
            _matches(f, s) for f, s in zip(r.frames, [first, after_torn, *good], strict=True)
        )
        assert [f.frame_number for f in r.frames] == [0, 1, 2, 3, 4]
        stats = listener.stats
        assert stats["torn"] == 1
        assert stats["garbage_bytes"] == 300 + 2000 + 40 + 50
        assert stats["resyncs"] == 2
        assert stats["frames_in"] == 5
    warnings = [rec for rec in caplog.records if "dropping bad bytes" in rec.getMessage()]
    assert len(warnings) == 2  # one line per burst, not one per dropped piece
    assert len([rec for rec in caplog.records if "resynchronised" in rec.getMessage()]) == 2


async def test_reconnect_keeps_frame_numbers_and_other_connections(tmp_path: Path) -> None:
    listener = HashpipeListener(_cfg(tmp_path))
    async with running(listener) as r:
        path = listener.paths()["img16"]
        idle = await _producer(path, "img16")  # connected, says nothing for a while
        p = await _producer(path, "img16")
        await asyncio.to_thread(p.send, 5)
        await asyncio.to_thread(p.send, 5)
        await until(lambda: len(r.frames) == 2, "two frames")
        await asyncio.to_thread(p.reconnect)
        await asyncio.to_thread(p.send, 5)
        await until(lambda: len(r.frames) == 3, "frame after reconnect")
        # Hashpipe may reconnect while its old connection is still open: both are read.
        late = await asyncio.to_thread(idle.send, 5)
        await until(lambda: len(r.frames) == 4, "frame on the long-idle connection")
        assert _matches(r.frames[3], late)
        assert [f.frame_number for f in r.of(5, "img16")] == [0, 1, 2, 3]
        await until(lambda: listener.stats["disconnections"] == 1, "one disconnection")
        assert listener.stats["connections"] == 3
        p.close()
        idle.close()


async def test_reset_connection_is_closed_alone(tmp_path: Path) -> None:
    listener = HashpipeListener(_cfg(tmp_path))
    async with running(listener) as r:
        path = listener.paths()["ph256"]
        a = await _producer(path, "ph256")
        b = await _producer(path, "ph256")
        await asyncio.to_thread(a.send_torn, 1, 100)
        # Close with unread data on our side to force a reset rather than a clean EOF.
        a.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        a.close()
        await until(lambda: listener.stats["disconnections"] == 1, "a closed")
        await asyncio.to_thread(b.send, 2)
        await until(lambda: len(r.frames) == 1, "frame on b")
        assert r.frames[0].module_id == 2
        b.close()


async def test_adopted_socket_is_used_and_not_unlinked(tmp_path: Path) -> None:
    path = tmp_path / "from-systemd.sock"
    inherited = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    inherited.bind(str(path))
    inherited.listen()
    listener = HashpipeListener(_cfg(tmp_path))
    passed = Inherited([inspect_fd(inherited.detach(), "ph256")])
    listener.open(passed)
    async with running(listener) as r:
        assert listener.paths()["ph256"] == str(path)
        assert not (tmp_path / "hp.dp_ph256.sock").exists()
        assert (tmp_path / "hp.dp_img16.sock").exists()
        p = await _producer(str(path), "ph256")
        sent = await asyncio.to_thread(p.send, 9)
        await until(lambda: len(r.frames) == 1, "frame via adopted socket")
        assert _matches(r.frames[0], sent)
        p.close()
    assert path.exists()
    assert not (tmp_path / "hp.dp_img16.sock").exists()


def test_adopting_a_non_stream_socket_is_refused(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as dgram:
        dgram.bind(str(tmp_path / "hp.dp_img16.sock"))
        passed = Inherited([inspect_fd(os.dup(dgram.fileno()), "img16")])
        listener = HashpipeListener(_cfg(tmp_path))
        with pytest.raises(
            ListenError, match=r"uds source img16: .*not a listening AF_UNIX stream"
        ):
            listener.open(passed)


async def test_sink_failure_is_counted_and_reading_continues(tmp_path: Path) -> None:
    listener = HashpipeListener(_cfg(tmp_path))
    got: list[Frame] = []

    def sink(frame: Frame) -> None:
        if frame.frame_number == 0:
            raise RuntimeError("boom")
        got.append(frame)

    ready = asyncio.Event()
    task = asyncio.create_task(listener.run(sink, ready))
    try:
        await asyncio.wait_for(ready.wait(), WAIT)
        p = await _producer(listener.paths()["ph256"], "ph256")
        await asyncio.to_thread(p.send, 1)
        await asyncio.to_thread(p.send, 1)
        await until(lambda: len(got) == 1, "second frame")
        assert listener.stats["sink_errors"] == 1
        p.close()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        listener.close()
