"""UbloxControl over the in-memory receiver: the real daemon in process, real gRPC on loopback.

The service is built with `MemoryReceiver.factory` and `.stat`, so InitF9t, CaptureUblox and
PollMessage go through the real servicer, link and framing, with no pty and no device node (the
device name is just a name). What the pty tests in test_ublox_init.py and test_ublox_stream.py
check over the serial path is checked here over the in-memory one; where the answer must be the
pty's, a second daemon on the serial transport asks the pty emulator the same and the two
answers are compared.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.json_format import MessageToDict
from grpc_health.v1 import health_pb2

from panoseti_appliance._proto import ublox_control_pb2 as pb
from panoseti_appliance._proto import ublox_control_pb2_grpc as pb_grpc
from panoseti_appliance.config import load_config
from panoseti_appliance.runtime.runner import Runner
from panoseti_appliance.ublox.client import chip_config, load_f9t_config, to_struct
from panoseti_appliance.ublox.emulator import F9tEmulator, MemoryReceiver
from panoseti_appliance.ublox.server.daemon import SERVICE_NAME, UbloxService
from panoseti_appliance.ublox.server.transport import (
    DeviceStat,
    SerialTransport,
    TransportFactory,
    node_mode,
)
from panoseti_appliance.ublox.ubxframes import FrameSplitter
from tests.daemons import free_tcp_port
from tests.integration.test_ublox_init import SHIPPED, UID, key_id

EPOCH_S = 0.1
RPC_TIMEOUT = 30.0
WAIT = 60.0
#: Whatever the config says: the in-memory receiver opens under any name.
DEVICE = "memory:ublox-f9t"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
DATA = pb.CaptureUbloxResponse.DATA
ERROR = pb.CaptureUbloxResponse.ERROR


@dataclass
class Node:
    """A running UbloxControl daemon, its runner and a stub on a channel to it."""

    service: UbloxService
    runner: Runner
    stub: pb_grpc.UbloxControlAsyncStub

    async def health_of_receiver(self) -> int:
        """`ubloxcontrol.UbloxControl`'s health, from the daemon's own health servicer."""
        request = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
        # In process, without a call: HealthServicer.Check reads no context.
        reply = await self.runner.health.Check(request, None)  # type: ignore[arg-type]
        return int(reply.status)


@contextlib.asynccontextmanager
async def running(
    workdir: Path,
    transport_factory: TransportFactory = SerialTransport,
    device_stat: DeviceStat = node_mode,
) -> AsyncIterator[Node]:
    """The daemon with an empty config file, serving on a free loopback port."""
    empty = workdir / "panoseti.yaml"
    await asyncio.to_thread(workdir.mkdir)
    await asyncio.to_thread(empty.write_text, "{}\n")
    port = free_tcp_port()
    config = load_config(empty, {"ublox": {"listen": [f"127.0.0.1:{port}"]}}, environ={})
    service = UbloxService(config, transport_factory=transport_factory, device_stat=device_stat)
    runner = Runner(service)
    await runner.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Node(service, runner, pb_grpc.UbloxControlStub(channel))
    finally:
        await runner.stop()


@pytest.fixture
def receiver() -> Iterator[MemoryReceiver]:
    with MemoryReceiver(epoch_s=EPOCH_S) as rx:
        yield rx


@pytest.fixture
async def node(tmp_path: Path, receiver: MemoryReceiver) -> AsyncIterator[Node]:
    async with running(tmp_path / "memory", receiver.factory, receiver.stat) as n:
        yield n


def f9t_cfg(device: str = DEVICE) -> dict[str, Any]:
    """The shipped example config merged for its chip, pointed at `device`."""
    cfg = chip_config(load_f9t_config(SHIPPED), UID)
    cfg["device"] = device
    return cfg


async def init(node: Node, cfg: dict[str, Any]) -> pb.InitF9tResponse:
    request = pb.InitF9tRequest(f9t_config=to_struct(cfg))
    reply: pb.InitF9tResponse = await node.stub.InitF9t(request, timeout=RPC_TIMEOUT)
    return reply


async def init_ok(node: Node, cfg: dict[str, Any]) -> None:
    reply = await init(node, cfg)
    assert reply.init_status == pb.InitF9tResponse.SUCCESS, reply.message


async def eventually(predicate: Any, what: str) -> None:
    """Await `predicate()` until it is true; AssertionError naming `what` after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def take(call: Any, n: int) -> list[pb.CaptureUbloxResponse]:
    out: list[pb.CaptureUbloxResponse] = []
    async for response in call:
        out.append(response)
        if len(out) == n:
            break
    call.cancel()
    return out


def sent(receiver: MemoryReceiver | F9tEmulator) -> list[str]:
    return [identity for identity, _ in receiver.received]


# ---- tests ---------------------------------------------------------------------------------------


async def test_init_writes_the_configuration_into_the_receivers_registers(
    node: Node, receiver: MemoryReceiver
) -> None:
    assert await node.health_of_receiver() == NOT_SERVING
    reply = await init(node, f9t_cfg())
    assert reply.init_status == pb.InitF9tResponse.SUCCESS, reply.message
    lines = reply.message.splitlines()
    assert lines[0] == "F9T initialized, configured, and verified successfully."
    assert "ZED-F9T" in lines[1]
    assert UID in lines[1]
    for layer in ("RAM", "BBR"):
        assert receiver.value("CFG_TP_FREQ_TP2", layer) == 10_000_000
        assert receiver.value("CFG_TMODE_LAT", layer) == 374219999
        assert receiver.value("CFG_TMODE_HEIGHT_HP", layer) == 50
    assert receiver.value("CFG_TP_FREQ_TP2", "FLASH") is None  # a layer not written
    requests = sent(receiver)
    assert requests[:2] == ["MON-VER", "SEC-UNIQID"]
    assert requests.count("CFG-VALSET") == 2
    assert requests.count("CFG-VALGET") == 1

    async def receiver_serving() -> bool:
        return await node.health_of_receiver() == SERVING

    await eventually(receiver_serving, "ubloxcontrol.UbloxControl to be SERVING")
    assert node.service.status().startswith(f"device {DEVICE}; receiver ready (Model ZED-F9T")


async def test_a_naked_key_fails_with_the_same_message_as_over_the_pty(
    tmp_path: Path, node: Node, receiver: MemoryReceiver
) -> None:
    refused = {key_id("CFG_TP_FREQ_TP2")}
    receiver.nak_keys = refused
    reply = await init(node, f9t_cfg())
    with F9tEmulator(epoch_s=EPOCH_S, link=tmp_path / "ublox-f9t") as emulator:
        emulator.nak_keys = refused
        async with running(tmp_path / "pty") as over_pty:
            pty_reply = await init(over_pty, f9t_cfg(emulator.device_path))
        pty_applied = emulator.value("CFG_SIGNAL_GPS_L5_ENA")
    assert reply.init_status == pty_reply.init_status == pb.InitF9tResponse.FAILURE
    assert reply.message == pty_reply.message
    assert reply.message.startswith("CFG-VALSET 2/2 (keys CFG_TMODE_MODE, ")
    assert "groups 1 (19 keys) stay applied." in reply.message
    assert receiver.value("CFG_SIGNAL_GPS_L5_ENA") == pty_applied == 0  # group 1 was applied
    # After the failure the daemon is idle, as over the pty.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await take(node.stub.CaptureUblox(pb.CaptureUbloxRequest(), timeout=RPC_TIMEOUT), 1)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.details() == "F9T is not initialized or I/O is not running."


async def test_a_wrong_uid_is_refused_before_anything_is_written(
    node: Node, receiver: MemoryReceiver
) -> None:
    cfg = f9t_cfg()
    cfg["f9t_uid"] = "AAAAAAAAAA"
    reply = await init(node, cfg)
    assert reply.init_status == pb.InitF9tResponse.FAILURE
    assert reply.message == "Detected F9T UID DF03A241BC does not match client UID AAAAAAAAAA."
    receiver.unique_id = 0xAAAAAAAAAA  # the other way round: another receiver on the port
    reply = await init(node, f9t_cfg())
    assert reply.init_status == pb.InitF9tResponse.FAILURE
    assert reply.message == "Detected F9T UID AAAAAAAAAA does not match client UID DF03A241BC."
    assert "CFG-VALSET" not in sent(receiver)


async def test_capture_streams_the_receivers_periodic_messages(
    node: Node, receiver: MemoryReceiver
) -> None:
    await init_ok(node, f9t_cfg())
    request = pb.CaptureUbloxRequest(patterns=["TIM-TP", "NAV-TIMEUTC"])
    responses = await take(node.stub.CaptureUblox(request, timeout=RPC_TIMEOUT), 10)
    assert all(r.type == DATA for r in responses)
    assert {r.name for r in responses} == {"TIM-TP", "NAV-TIMEUTC"}
    for r in responses:  # each the receiver's whole frame, byte for byte
        assert [f.raw for f in FrameSplitter().feed(r.payload)] == [r.payload]
    # One epoch per receiver second: consecutive TIM-TPs describe pulses one second apart.
    tow = [MessageToDict(r.parsed_data)["towMS"] for r in responses if r.name == "TIM-TP"]
    assert len(tow) >= 4
    assert {b - a for a, b in itertools.pairwise(tow)} == {1000}
    # The replies InitF9t consumed are not streamed, as over the pty.
    call = node.stub.CaptureUblox(pb.CaptureUbloxRequest(), timeout=RPC_TIMEOUT)
    everything = await take(call, 6)
    assert not {"ACK-ACK", "ACK-NAK", "CFG-VALGET"} & {r.name for r in everything}


async def test_an_unplug_mid_stream_ends_it_and_the_daemon_waits_for_the_receiver(
    node: Node, receiver: MemoryReceiver
) -> None:
    cfg = f9t_cfg()
    cfg["apply_to_layers"] = ["RAM"]  # lost when the receiver loses power
    await init_ok(node, cfg)
    call = node.stub.CaptureUblox(pb.CaptureUbloxRequest(patterns=["TIM-TP"]), timeout=WAIT)
    first = await call.read()
    assert isinstance(first, pb.CaptureUbloxResponse)
    assert first.name == "TIM-TP"
    valsets = sent(receiver).count("CFG-VALSET")

    receiver.unplug()
    tail: list[pb.CaptureUbloxResponse] = []

    async def read_to_the_end() -> None:
        while isinstance(response := await call.read(), pb.CaptureUbloxResponse):
            tail.append(response)

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await read_to_the_end()
    # What test_ublox_stream.py sees when the pty vanishes.
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert info.value.details() == "F9T device disconnected"
    assert tail[-1].type == ERROR
    assert tail[-1].message.startswith("device disconnected: ")
    assert "receiver unplugged" in tail[-1].message
    assert all(r.type == DATA for r in tail[:-1])
    # The link is lost: no polls, not serving, waiting for the device to come back.
    with pytest.raises(grpc.aio.AioRpcError) as poll:
        await node.stub.PollMessage(pb.PollRequest(patterns=["MON-VER"]), timeout=RPC_TIMEOUT)
    assert poll.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    async def waiting() -> bool:
        state = node.service.servicer.describe_state()
        return state == f"waiting for {DEVICE} to appear" and (
            await node.health_of_receiver() == NOT_SERVING
        )

    await eventually(waiting, "the daemon to wait for the receiver, not serving")

    replugged_at = time.time()
    receiver.replug()

    async def capture_works() -> bool:
        call = node.stub.CaptureUblox(pb.CaptureUbloxRequest(patterns=["TIM-TP"]), timeout=5)
        try:
            got = await take(call, 1)
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in (
                grpc.StatusCode.FAILED_PRECONDITION,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            ):
                raise
            return False
        stamp = got[0].pkt_unix_timestamp
        return stamp.seconds + stamp.nanos / 1e9 > replugged_at

    await eventually(capture_works, "the daemon's own re-init after the re-plug")
    # The daemon re-ran the plan on the power-cycled receiver by itself.
    assert sent(receiver).count("CFG-VALSET") == 2 * valsets
    assert receiver.value("CFG_TP_FREQ_TP2") == 10_000_000


async def test_an_unplug_during_init_ends_it_unavailable_and_a_later_init_succeeds(
    node: Node, receiver: MemoryReceiver
) -> None:
    # A receiver that takes requests but answers none keeps InitF9t waiting at its first step,
    # which is where the cable is pulled.
    receiver.silent = True
    call = asyncio.ensure_future(init(node, f9t_cfg()))

    async def asked() -> bool:
        return bool(sent(receiver))

    await eventually(asked, "InitF9t's first request to reach the receiver")
    assert not call.done()
    receiver.unplug()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    # The loss ends the call at once, as UNAVAILABLE: not a FAILURE after the ack timeout.
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    details = info.value.details() or ""
    assert details.startswith("F9T device disconnected: "), details
    assert "receiver unplugged" in details
    # The daemon goes on serving: nothing was brought up, so it is idle, not waiting.
    assert not node.service.servicer.link_up
    with pytest.raises(grpc.aio.AioRpcError) as poll:
        await node.stub.PollMessage(pb.PollRequest(patterns=["MON-VER"]), timeout=RPC_TIMEOUT)
    assert poll.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    receiver.silent = False
    receiver.replug()
    await init_ok(node, f9t_cfg())
    assert node.service.servicer.link_up
