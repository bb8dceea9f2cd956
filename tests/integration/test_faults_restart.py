"""A daemon killed while clients stream, then restarted on the same addresses.

SIGKILL gives the daemon no shutdown: its streams end without a status, its gRPC unix socket
and Hashpipe socket files stay behind. The restarted daemon must take those paths again, and
a client streaming with reconnect must re-subscribe by itself and go on receiving, without an
exception reaching the caller (docs/clients.md, "Python").
"""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc

from panoseti_appliance._proto import ublox_control_pb2 as pb
from panoseti_appliance.daqdata.client import DaqDataClient
from panoseti_appliance.ublox.client import AioUbloxControlClient
from panoseti_appliance.ublox.emulator import F9tEmulator
from tests.daemons import Daemon, free_tcp_port, kill, start_daemon
from tests.integration.test_client_daemon import assert_live_image, daqdata_settings
from tests.integration.test_ublox_init import UID, emulator

__all__ = ["emulator"]  # fixture used by this module

#: Generous bound on each phase; the client normally resumes within a second or two.
PHASE_SECONDS = 60.0
DATA = pb.CaptureUbloxResponse.DATA
ERROR = pb.CaptureUbloxResponse.ERROR


def test_daqdata_stream_resumes_after_the_daemon_is_killed_and_restarted(tmp_path: Path) -> None:
    port = free_tcp_port()
    settings = daqdata_settings(tmp_path, port, [4], True)
    target = f"127.0.0.1:{port}"
    first = start_daemon("panoseti-daqdata", tmp_path / "first", settings, target)
    second: Daemon | None = None
    before: list[int] = []
    after: list[int] = []
    killed_at = Decimal(0)
    stop = threading.Event()
    try:
        with DaqDataClient(hosts=[target]) as client:
            deadline = time.monotonic() + PHASE_SECONDS
            stream = client.stream_images(None, True, True, 0, stop_event=stop, reconnect=True)
            for image in stream:
                assert time.monotonic() < deadline, f"before={before[-3:]} after={after[-3:]}"
                assert_live_image(image)
                stamp = image["header"]["wr_unix_timestamp"]
                if second is None:
                    before.append(image["frame_number"])
                    if len(before) == 10:
                        assert kill(first) == -9
                        killed_at = Decimal(time.time())
                        second = start_daemon(
                            "panoseti-daqdata", tmp_path / "second", settings, target
                        )
                        deadline = time.monotonic() + PHASE_SECONDS
                elif stamp > killed_at:  # queued images of the first process come before
                    after.append(image["frame_number"])
                    if len(after) == 10:
                        stop.set()
            code, _details = client.last_stream_status[target]
            assert code is grpc.StatusCode.UNAVAILABLE  # the killed call, then re-subscribed
    finally:
        if second is not None:
            second.stop()
    assert len(before) == len(after) == 10
    assert after == sorted(after)


async def test_ublox_capture_resumes_after_the_daemon_is_killed_and_restarted(
    emulator: F9tEmulator, tmp_path: Path
) -> None:
    port = free_tcp_port()
    target = f"127.0.0.1:{port}"
    settings: dict[str, Any] = {
        "ublox": {
            "listen": [target, f"unix://{tmp_path}/ublox.sock"],
            "init_on_start": True,
            "apply_to_layers": ["RAM"],
            "cfg_key_settings": [{"key": "CFG_MSGOUT_UBX_TIM_TP_USB", "value": 1}],
            "chips": [{"uid": UID, "device": emulator.device_path}],
        },
    }
    first = await asyncio.to_thread(
        start_daemon, "panoseti-ubloxcontrol", tmp_path / "first", settings, target
    )
    second: Daemon | None = None
    events: list[tuple[int, str]] = []
    data_after = 0
    stop = asyncio.Event()
    try:
        async with AioUbloxControlClient([target]) as client:
            deadline = time.monotonic() + PHASE_SECONDS
            # init_on_start is under way: the first subscriptions may find the receiver not
            # initialised yet, which a capture raises rather than waits for; poll until it is.
            while not await _captures(client):
                assert time.monotonic() < deadline, f"init_on_start did not finish:\n{first.log()}"
                await asyncio.sleep(0.2)
            async for item in client.capture(["TIM-TP"], stop_event=stop):
                assert time.monotonic() < deadline, f"stuck: {events[-5:]}"
                r = item.response
                events.append((r.type, r.message if r.type == ERROR else r.name))
                if second is None and r.type == DATA and len(events) >= 3:
                    assert await asyncio.to_thread(kill, first) == -9
                    second = await asyncio.to_thread(
                        start_daemon, "panoseti-ubloxcontrol", tmp_path / "second", settings, target
                    )
                    deadline = time.monotonic() + PHASE_SECONDS
                elif second is not None and r.type == DATA and any(t == ERROR for t, _ in events):
                    data_after += 1
                    if data_after == 3:
                        stop.set()
    finally:
        if second is not None:
            await asyncio.to_thread(second.stop)
    notices = [m for t, m in events if t == ERROR]
    assert notices, events
    assert notices[0].startswith("stream ended: UNAVAILABLE"), notices
    assert events[-1] == (DATA, "TIM-TP")
    assert data_after == 3


async def _captures(client: AioUbloxControlClient) -> bool:
    """Whether a capture delivers a TIM-TP message now (False while the receiver is not
    initialised)."""
    stop = asyncio.Event()
    try:
        async for item in client.capture(["TIM-TP"], stop_event=stop, reconnect=False):
            stop.set()
            return item.response.type == DATA
    except grpc.RpcError as exc:
        if exc.code() is not grpc.StatusCode.FAILED_PRECONDITION:
            raise
    return False
