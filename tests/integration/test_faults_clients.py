"""Clients that take and leave: hundreds of streams nobody reads, a thousand short connections.

Each client's state in the daemon (its call, its subscription, its HTTP/2 connection, its
socket) must go with the client. What is left afterwards is measured from outside, as an
operator would: resident memory (VmRSS in /proc/PID/status) and open descriptors
(/proc/PID/fd), each compared with a baseline taken once the daemon has warmed up.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import grpc
from google.protobuf import empty_pb2

from panoseti_appliance._proto import daq_data_pb2_grpc as pb_grpc
from tests.daemons import Daemon
from tests.integration.test_client_daemon import start_daqdata
from tests.integration.test_daqdata_support import stream_request, until

IDLE_STREAMS = 300
CYCLES = 1000
#: Descriptors the daemon may hold above its baseline once every client has gone: a few for
#: what grpc keeps around (its wake-up fds, a connection still closing), nowhere near one per
#: client, which is what a leak would leave (300 or 1000 here).
FD_SLACK = 10
#: Resident memory the daemon may have grown by, in KiB. Freed memory is not always returned
#: to the system (allocator arenas, Python's own pools), so RSS is only compared coarsely: 300
#: streams with a first tick of images waiting each, or 1000 connections, leaked, would leave
#: far more (each held stream alone keeps its HTTP/2 buffers, ~100 KiB and up).
RSS_SLACK_KIB = 24 * 1024
#: What a second round of unread streams may add to the RSS the first left: a third of what
#: the first round's 300 streams took, so a leak of every stream would exceed it.
ROUND_RSS_SLACK_KIB = 4 * 1024
#: RSS counts as settled once it has not fallen for SETTLE_QUIET_S, waiting at most SETTLE_MAX_S.
SETTLE_QUIET_S = 1.0
SETTLE_MAX_S = 10.0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def usage(d: Daemon) -> tuple[int, int]:
    pid = d.proc.pid
    return rss_kib(pid), open_fds(pid)


def back_near(d: Daemon, base: tuple[int, int]) -> tuple[int, int] | None:
    """The daemon's usage once it is back within the slack of `base` (None until then)."""
    now = usage(d)
    ok = now[0] <= base[0] + RSS_SLACK_KIB and now[1] <= base[1] + FD_SLACK
    return now if ok else None


def settled(d: Daemon, base: tuple[int, int]) -> tuple[int, int]:
    """The daemon's usage once it is back near `base` and its RSS has stopped falling: gRPC
    frees closed connections' buffers for a while after the descriptors are gone, so the first
    sample near the base can still hold some of them."""
    lowest: tuple[int, int] = until(lambda: back_near(d, base), what=f"usage back near {base}")
    deadline = time.monotonic() + SETTLE_MAX_S
    quiet_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - quiet_since < SETTLE_QUIET_S:
        time.sleep(0.2)
        now = usage(d)
        if now[0] < lowest[0]:
            lowest, quiet_since = now, time.monotonic()
    return lowest


def warm_up(d: Daemon) -> tuple[int, int]:
    """Serve a few streams and pings first, so that one-time allocations (grpc's threads and
    pools, imports on first use) are in the baseline rather than counted as growth."""
    with grpc.insecure_channel(d.target) as channel:
        stub = pb_grpc.DaqDataStub(channel)
        for _ in range(3):
            call = stub.StreamImages(stream_request(), timeout=30)
            next(call)
            call.cancel()
            stub.Ping(empty_pb2.Empty(), timeout=10)
    return usage(d)


def unread_streams(d: Daemon, base: tuple[int, int]) -> tuple[int, int]:
    """IDLE_STREAMS clients, each on its own connection, open StreamImages, take the first
    image (so the daemon has admitted the stream and is writing to it), never read again,
    then go. The daemon's usage while they are held."""
    # A subchannel pool of its own per channel: otherwise grpc shares one connection between
    # all channels to the same target, and this would be one client.
    own_connection = [("grpc.use_local_subchannel_pool", 1)]
    channels = [
        grpc.insecure_channel(d.target, options=own_connection) for _ in range(IDLE_STREAMS)
    ]
    try:
        calls = [
            pb_grpc.DaqDataStub(ch).StreamImages(stream_request(), timeout=120) for ch in channels
        ]
        for call in calls:
            next(call)
        held = usage(d)
        assert held[1] > base[1] + IDLE_STREAMS - FD_SLACK  # a connection each, all held
        with grpc.insecure_channel(d.target) as other:
            pb_grpc.DaqDataStub(other).Ping(empty_pb2.Empty(), timeout=10)
        return held
    finally:
        for channel in channels:
            channel.close()


def test_streams_nobody_reads_leave_nothing_behind(tmp_path: Path) -> None:
    d = start_daqdata(
        tmp_path,
        [1, 2],
        max_concurrent_rpcs=IDLE_STREAMS + 50,
        max_streams_per_peer=IDLE_STREAMS + 50,  # all of them come from loopback
    )
    try:
        base = warm_up(d)
        held = unread_streams(d, base)
        first = settled(d, base)
        # The allocator keeps what a round freed, so RSS is compared round to round, and only
        # from the second round on: measured here, the second round still adds 1-5 MiB to what
        # the first left, the rounds after it stay within 0.4 MiB of the second. A leak makes
        # every round grow by a round's worth (about 40 KiB a stream here, 12 MiB per round).
        unread_streams(d, base)
        second = settled(d, base)
        unread_streams(d, base)
        third = settled(d, base)
        assert third[0] <= second[0] + ROUND_RSS_SLACK_KIB
        print(
            f"baseline {base}, {IDLE_STREAMS} unread streams {held}, "
            f"after each round {first}, {second}, {third}"
        )
    finally:
        d.stop()


def test_a_thousand_connect_disconnect_cycles_leave_nothing_behind(tmp_path: Path) -> None:
    d = start_daqdata(tmp_path, [1])
    host, port = d.target.rsplit(":", 1)
    try:
        base = warm_up(d)
        for i in range(CYCLES):
            if i % 2:
                # A client that connects, takes one image and goes.
                with grpc.insecure_channel(d.target) as channel:
                    call = pb_grpc.DaqDataStub(channel).StreamImages(stream_request(), timeout=30)
                    next(call)
                    call.cancel()
            else:
                # A TCP connection that says nothing and goes (a port scanner, a health probe).
                with socket.create_connection((host, int(port)), timeout=10):
                    pass
        after = until(lambda: back_near(d, base), what=f"usage back near {base}")
        print(f"baseline {base}, after {CYCLES} cycles {after}")
    finally:
        d.stop()
