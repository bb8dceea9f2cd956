"""Hashpipe producers misbehaving against the real daemon: a disconnect in the middle of a
frame, a flood faster than the daemon reads, hundreds of idle connections, too few descriptors.

What the source does with torn bytes, noise and reconnects inside one process is in
test_sources_hashpipe.py and test_daqdata_stream.py; here the daemon as a whole must keep its
frame count right across connections and keep answering its clients while a producer misbehaves.
"""

from __future__ import annotations

import contextlib
import functools
import re
import resource
import socket
import threading
from pathlib import Path

import grpc
from google.protobuf import empty_pb2

from panoseti_appliance._proto import daq_data_pb2_grpc as pb_grpc
from tests.integration.test_daqdata_support import (
    Collector,
    DaqData,
    daqdata,
    pkt_num,
    send_frame,
    stream_request,
    until,
)
from tests.producers import socket_frame

IDLE_CONNECTIONS = 200
#: Frames per flood batch (one send each): about 150 KB, a seventh of the connection's 1 MiB
#: buffer, so a batch that does not fit means the daemon had most of that buffer still unread.
FLOOD_BATCH = 64
#: The daemon's descriptor limit in the exhaustion test, above what it holds once started.
FD_LIMIT = 96


def ping(d: DaqData, channel: grpc.Channel | None = None) -> bool:
    """Whether Ping answers, on `channel` or on a new connection."""
    with contextlib.ExitStack() as stack:
        ch = channel or stack.enter_context(grpc.insecure_channel(d.target))
        pb_grpc.DaqDataStub(ch).Ping(empty_pb2.Empty(), timeout=10)
        return True


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def _connected(s: socket.socket, path: str) -> bool:
    return s.connect_ex(path) == 0


def idle_connections(path: str, n: int) -> list[socket.socket]:
    """`n` connections to a Hashpipe socket that never send anything."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            socks.append(s)
            s.setblocking(False)
            # A unix socket's connect fails at once (EAGAIN) while the listener's backlog is
            # full; the daemon accepts them a moment later.
            until(functools.partial(_connected, s, path), what="room in the backlog")
            s.setblocking(True)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def test_disconnect_mid_frame_then_reconnect_loses_nothing_ingested(tmp_path: Path) -> None:
    with daqdata(tmp_path) as d:
        stream = Collector(d, stream_request())
        producer = d.producer("ph256")
        try:
            for _ in range(5):  # pkt 0..4 in one burst, then half of pkt 5, then gone
                send_frame(producer, 3)
            producer.send_torn(3, keep=150)
            producer.reconnect()
            newest = stream.wait_for(lambda img: pkt_num(img) == 4, "the burst's last frame")
            assert newest.frame_number == 4
            closed = until(
                lambda: re.search(r"closed \(end of stream\); (.*torn=1.*)", d.log()),
                what="the torn connection's counters",
            )
            assert "frames_in=5" in closed[1]
            assert "torn=1" in closed[1]
            pkt = send_frame(producer, 3)  # pkt 6 on the new connection
            image = stream.wait_for(lambda img: pkt_num(img) == pkt, "the first frame after")
            # Numbered right after the five complete frames: the torn one was never counted.
            assert image.frame_number == 5
            assert ping(d)
        finally:
            producer.close()
            stream.close()


def test_a_flooding_producer_leaves_ping_and_streams_served(tmp_path: Path) -> None:
    with daqdata(tmp_path) as d, grpc.insecure_channel(d.target) as channel:
        stream = Collector(d, stream_request())
        pixels = socket_frame("img16", 1, 0).pixels  # the same pixels: building them is slow
        batch = b"".join(
            socket_frame("img16", 1, i, pixels=pixels).wire for i in range(FLOOD_BATCH)
        )
        flooding = threading.Event()
        flooding.set()
        full = 0  # batches that found the connection's buffer full: the daemon was behind
        flood = d.producer("img16")

        def run() -> None:
            nonlocal full
            while flooding.is_set():
                try:
                    sent = flood.sock.send(batch, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    sent = 0
                if sent < len(batch):
                    full += 1
                    flood.sock.sendall(batch[sent:])

        flooder = threading.Thread(target=run, daemon=True)
        flooder.start()
        quiet = d.producer("ph256")
        try:
            stream.wait_for(lambda img: img.module_id == 1, "a flooded frame")
            for _ in range(20):
                assert ping(d, channel)
                pkt = send_frame(quiet, 9)
                stream.wait_for(
                    lambda img, pkt=pkt: img.module_id == 9 and pkt_num(img) == pkt,  # type: ignore[misc]
                    f"the quiet producer's pkt {pkt} during the flood",
                )
            # Whether the daemon fell behind depends on the machine: a Python producer sends
            # about 80 000 img16 frames/s here and the daemon kept up. It is reported, not
            # asserted; what is asserted is that the daemon answered throughout.
            print(f"flood: {full} of the producer's batches found the socket full")
        finally:
            flooding.clear()
            flooder.join(timeout=30)
            flood.close()
            quiet.close()
            stream.close()


def test_idle_connections_take_nothing_from_clients_or_other_producers(tmp_path: Path) -> None:
    # Lifted so that all of them are held (what is beyond the limit: test_daqdata_limits.py).
    room = {"daqdata": {"hashpipe": {"max_connections_per_socket": IDLE_CONNECTIONS + 1}}}
    with daqdata(tmp_path, room) as d:
        pid = d.daemon.proc.pid
        before = open_fds(pid)
        idle = idle_connections(d.socket_path("ph256"), IDLE_CONNECTIONS)
        try:
            until(
                lambda: d.log().count("producer connected") == IDLE_CONNECTIONS,
                what="every idle one accepted",
            )
            assert open_fds(pid) > before + IDLE_CONNECTIONS - 10  # all held open
            stream = Collector(d, stream_request())
            producer = d.producer("ph256")
            try:
                assert ping(d)
                pkt = send_frame(producer, 2)
                stream.wait_for(lambda img: pkt_num(img) == pkt, "a frame beside the idle ones")
            finally:
                producer.close()
                stream.close()
        finally:
            for s in idle:
                s.close()
        until(lambda: open_fds(pid) < before + 10, what="the idle connections closed")


def test_running_out_of_descriptors_is_survived_and_recovered_from(tmp_path: Path) -> None:
    # Descriptors, not the connection limit, must run out first.
    room = {"daqdata": {"hashpipe": {"max_connections_per_socket": FD_LIMIT * 2}}}
    with daqdata(tmp_path, room) as d, grpc.insecure_channel(d.target) as channel:
        assert ping(d, channel)  # this connection is open before the descriptors run out
        pid = d.daemon.proc.pid
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))
        # 20 more than fit: those wait in the listening socket's backlog (64), so connect
        # returns for every one of them.
        idle = idle_connections(d.socket_path("ph256"), FD_LIMIT - open_fds(pid) + 20)
        try:
            until(lambda: "accept failed" in d.log(), what="accept to fail for want of fds")
            assert ping(d, channel)  # an open client connection is still served
        finally:
            for s in idle:
                s.close()
        # With descriptors free again, new producers and new clients are served.
        stream = Collector(d, stream_request())
        producer = d.producer("ph256")
        try:
            pkt = send_frame(producer, 5)
            stream.wait_for(lambda img: pkt_num(img) == pkt, "a frame after the shortage")
            assert ping(d)
        finally:
            producer.close()
            stream.close()
        assert open_fds(pid) < FD_LIMIT
