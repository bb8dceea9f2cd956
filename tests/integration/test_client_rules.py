"""Client merge and end rules (docs/clients.md, "Methods (both clients)") against scripted servers.

Each server is a real grpc server on an ephemeral 127.0.0.1 port whose StreamImages follows a
script (send n images, then end with a status; or stream until cancelled), so every end rule,
the stop event, reconnects and admission errors can be driven exactly.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2
from grpc_reflection.v1alpha import reflection

from panoseti_appliance._proto import daq_data_pb2, daq_data_pb2_grpc
from panoseti_appliance.daqdata.client import AioDaqDataClient, DaqDataClient
from tests.daemons import free_tcp_port

Plan = Callable[[Any, int], Iterator[daq_data_pb2.StreamImagesResponse]]
WAIT = 30.0


def response(module_id: int, n: int) -> daq_data_pb2.StreamImagesResponse:
    image = daq_data_pb2.PanoImage(
        type=daq_data_pb2.PanoImage.PULSE_HEIGHT,
        image_array=[n] * 256,
        shape=[16, 16],
        bytes_per_pixel=2,
        file="scripted",
        frame_number=n,
        module_id=module_id,
    )
    return daq_data_pb2.StreamImagesResponse(pano_image=image)


class ScriptedDaqData(daq_data_pb2_grpc.DaqDataServicer):
    """A DaqData servicer whose n-th StreamImages call follows plans[n] (the last plan repeats)."""

    def __init__(self, module_id: int, plans: list[Plan]) -> None:
        self.module_id = module_id
        self.plans = plans
        self.stream_requests: list[daq_data_pb2.StreamImagesRequest] = []
        self.cancelled = threading.Event()
        self.init_requests: list[daq_data_pb2.InitHpIoRequest] = []
        self.init_reply = daq_data_pb2.InitHpIoResponse(success=True)
        self.uploaded: list[daq_data_pb2.PanoImage] = []
        self.upload_abort: tuple[grpc.StatusCode, str] | None = None

    def StreamImages(self, request: Any, context: Any) -> Iterator[Any]:
        self.stream_requests.append(request)
        plan = self.plans[min(len(self.stream_requests), len(self.plans)) - 1]
        context.add_callback(self._on_done(context))
        yield from plan(context, self.module_id)

    def _on_done(self, context: Any) -> Callable[[], None]:
        def done() -> None:
            if context.code() is None and not context.is_active():
                self.cancelled.set()

        return done

    def Ping(self, request: Any, context: Any) -> Any:
        return empty_pb2.Empty()

    def InitHpIo(self, request: Any, context: Any) -> Any:
        self.init_requests.append(request)
        return self.init_reply

    def UploadImages(self, request_iterator: Any, context: Any) -> Any:
        for request in request_iterator:
            if self.upload_abort is not None:
                context.abort(*self.upload_abort)
            self.uploaded.append(request.pano_image)
        return empty_pb2.Empty()


def send(n: int, then: grpc.StatusCode = grpc.StatusCode.OK, details: str = "") -> Plan:
    def plan(context: Any, module_id: int) -> Iterator[Any]:
        for i in range(n):
            yield response(module_id, i)
        if then is not grpc.StatusCode.OK:
            context.abort(then, details)

    return plan


def forever(context: Any, module_id: int) -> Iterator[Any]:
    i = 0
    while context.is_active():
        yield response(module_id, i)
        i += 1
        time.sleep(0.01)


def refuse_after_start(other: Server, code: grpc.StatusCode, details: str) -> Plan:
    """End at once with `code`, but only after `other` has started serving its stream.

    A client cancels its other calls when one host refuses; a call cancelled before its server
    even dispatched it leaves nothing on that server to observe, so the refusal waits for it.
    """

    def plan(context: Any, module_id: int) -> Iterator[Any]:
        deadline = time.monotonic() + WAIT
        while not other.servicer.stream_requests and time.monotonic() < deadline:
            time.sleep(0.01)
        yield from send(0, code, details)(context, module_id)

    return plan


def wait_then_send(gate: threading.Event, n: int) -> Plan:
    def plan(context: Any, module_id: int) -> Iterator[Any]:
        gate.wait(WAIT)
        yield from send(n)(context, module_id)

    return plan


class Server:
    def __init__(self, module_id: int, plans: list[Plan], port: int = 0) -> None:
        self.servicer = ScriptedDaqData(module_id, plans)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        daq_data_pb2_grpc.add_DaqDataServicer_to_server(self.servicer, self.server)
        reflection.enable_server_reflection(
            ["daqdata.DaqData", reflection.SERVICE_NAME], self.server
        )
        port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        self.target = f"127.0.0.1:{port}"
        self.server.start()

    def stop(self) -> None:
        self.server.stop(grace=None).wait()


@pytest.fixture
def servers() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(module_id: int, *plans: Plan) -> Server:
        server = Server(module_id, list(plans) or [forever])
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def modules(items: list[Any]) -> list[int]:
    return [r.pano_image.module_id for r in items]


def raw_stream(client: DaqDataClient, **kwargs: Any) -> Iterator[Any]:
    return client.stream_images(None, True, True, 0, parse_pano_images=False, **kwargs)


def test_merge_ends_once_per_host_and_records_each_end(servers: Callable[..., Server]) -> None:
    a = servers(1, send(4))
    b = servers(2, send(3, grpc.StatusCode.UNAVAILABLE, "Server is shutting down."))
    c = servers(3, send(2, grpc.StatusCode.CANCELLED, "hp_io reconfigured"))
    with DaqDataClient(hosts=[a.target, b.target, c.target]) as client:
        items = list(raw_stream(client))
        assert sorted(modules(items)) == [1, 1, 1, 1, 2, 2, 2, 3, 3]
        assert client.last_stream_status == {
            a.target: (grpc.StatusCode.OK, ""),
            b.target: (grpc.StatusCode.UNAVAILABLE, "Server is shutting down."),
            c.target: (grpc.StatusCode.CANCELLED, "hp_io reconfigured"),
        }


def test_slow_host_does_not_block_fast_host(servers: Callable[..., Server]) -> None:
    gate = threading.Event()
    slow = servers(1, wait_then_send(gate, 2))
    fast = servers(2, send(5))
    with DaqDataClient(hosts=[slow.target, fast.target]) as client:
        stream = raw_stream(client)
        first = [next(stream) for _ in range(5)]
        gate.set()
        rest = list(stream)
    assert modules(first) == [2] * 5
    assert modules(rest) == [1, 1]


def test_admission_error_surfaces_on_first_next_and_cancels_others(
    servers: Callable[..., Server],
) -> None:
    healthy = servers(1, forever)
    failing = servers(
        2,
        refuse_after_start(
            healthy, grpc.StatusCode.FAILED_PRECONDITION, "hp_io task is not valid."
        ),
    )
    with DaqDataClient(hosts=[healthy.target, failing.target]) as client:
        stream = raw_stream(client)
        with pytest.raises(grpc.RpcError) as info:
            list(stream)  # read to the end: the failing host's error ends it
        assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert info.value.details() == "hp_io task is not valid."
    assert healthy.servicer.cancelled.wait(WAIT)


def test_stop_event_ends_stream_and_cancels_calls(servers: Callable[..., Server]) -> None:
    a, b = servers(1, forever), servers(2, forever)
    stop = threading.Event()
    received = 0
    with DaqDataClient(hosts=[a.target, b.target]) as client:
        for _item in raw_stream(client, stop_event=stop):
            received += 1
            if received == 5:
                stop.set()
    assert received >= 5
    assert a.servicer.cancelled.wait(WAIT)
    assert b.servicer.cancelled.wait(WAIT)


def test_reconnect_reissues_same_request_after_unavailable(servers: Callable[..., Server]) -> None:
    a = servers(7, send(3, grpc.StatusCode.UNAVAILABLE, "Server is shutting down."), send(2))
    with DaqDataClient(hosts=[a.target]) as client:
        items = list(
            client.stream_images(
                a.target, True, False, 0.5, [7], parse_pano_images=False, reconnect=True
            )
        )
        assert [r.pano_image.frame_number for r in items] == [0, 1, 2, 0, 1]
        assert client.last_stream_status[a.target] == (grpc.StatusCode.OK, "")
    first, second = a.servicer.stream_requests
    assert first == second
    assert list(first.module_ids) == [7]
    assert first.stream_movie_data
    assert not first.stream_pulse_height_data


def test_without_reconnect_unavailable_ends_the_host(servers: Callable[..., Server]) -> None:
    a = servers(7, send(1, grpc.StatusCode.UNAVAILABLE, "gone"), send(5))
    with DaqDataClient(hosts=[a.target]) as client:
        assert len(list(raw_stream(client))) == 1
    assert len(a.servicer.stream_requests) == 1


def test_validate_daq_hosts_errors(servers: Callable[..., Server]) -> None:
    up = servers(1)
    down = f"127.0.0.1:{free_tcp_port()}"
    with DaqDataClient(hosts=[up.target, down]) as client:
        assert client.get_daq_host_status() == {up.target: True, down: False}
        assert client.validate_daq_hosts(None) == [up.target]
        assert client.validate_daq_hosts(up.target) == [up.target]
        with pytest.raises(ConnectionError, match=f"host={down} does not have a valid gRPC"):
            client.validate_daq_hosts([down])
        with pytest.raises(ValueError, match="hosts must be"):
            client.validate_daq_hosts(42)  # type: ignore[arg-type]
    with (
        DaqDataClient(hosts=[down]) as client,
        pytest.raises(ConnectionError, match="No valid daq hosts found"),
    ):
        client.validate_daq_hosts(None)


def test_context_manager_lets_exceptions_propagate(servers: Callable[..., Server]) -> None:
    a = servers(1, send(0, grpc.StatusCode.RESOURCE_EXHAUSTED, "Max clients (1) reached."))
    with pytest.raises(grpc.RpcError) as info, DaqDataClient(hosts=[a.target]) as client:
        next(raw_stream(client))
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_init_hp_io_all_hosts_with_data_dir_from_daq_config(servers: Callable[..., Server]) -> None:
    a, b = servers(1), servers(2)
    daq_config = {
        "daq_nodes": [
            {"ip_addr": a.target, "data_dir": "/mnt/a"},
            {"ip_addr": b.target, "data_dir": "/mnt/b"},
        ]
    }
    with DaqDataClient(daq_config) as client:
        assert client.init_hp_io(None, {"update_interval_seconds": 0.5, "module_ids": [3]})
        b.servicer.init_reply = daq_data_pb2.InitHpIoResponse(success=False, error_message="no")
        assert not client.init_sim(None)
    (ra,), (rb,) = a.servicer.init_requests[:1], b.servicer.init_requests[:1]
    assert (ra.data_dir, rb.data_dir) == ("/mnt/a", "/mnt/b")
    assert ra.update_interval_seconds == 0.5
    assert list(ra.module_ids) == [3]
    assert not ra.simulate_daq
    assert not ra.force
    sim = a.servicer.init_requests[1]
    assert sim.simulate_daq
    assert sim.force
    assert sim.data_dir == "simulated_data_dir"


def test_init_hp_io_rejects_bad_config_naming_the_field(servers: Callable[..., Server]) -> None:
    a = servers(1)
    with DaqDataClient(hosts=[a.target]) as client:
        with pytest.raises(ValueError, match=r"^hp_io_cfg: update_interval_seconds: required"):
            client.init_hp_io(None, {"data_dir": "/x"})
        with pytest.raises(ValueError, match=r"hp_io.datadir: unknown key; remove it \(did you"):
            client.init_hp_io(None, {"datadir": "/x", "update_interval_seconds": 1})
        with pytest.raises(ValueError, match=r"hp_io.module_ids\[0\]: .* 65535 \(got 70000\)"):
            client.init_hp_io(None, {"update_interval_seconds": 1, "module_ids": [70000]})
        with pytest.raises(ValueError, match="data_dir 'run' is not an absolute path"):
            client.init_hp_io(None, {"data_dir": "run", "update_interval_seconds": 1})
    assert a.servicer.init_requests == []


def test_upload_images_sends_every_image_to_every_host(servers: Callable[..., Server]) -> None:
    a, b = servers(1), servers(2)
    images = [response(9, i).pano_image for i in range(200)]
    with DaqDataClient(hosts=[a.target, b.target]) as client:
        client.upload_images(None, iter(images))
    assert a.servicer.uploaded == images
    assert b.servicer.uploaded == images


def test_upload_images_raises_a_host_error(servers: Callable[..., Server]) -> None:
    a, b = servers(1), servers(2)
    b.servicer.upload_abort = (grpc.StatusCode.INVALID_ARGUMENT, "image 0: type UNDEFINED")
    images = [response(9, i).pano_image for i in range(300)]
    with DaqDataClient(hosts=[a.target, b.target]) as client:
        with pytest.raises(grpc.RpcError) as info:
            client.upload_images(None, images)
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert a.servicer.uploaded == images


def test_reflect_services_sync(servers: Callable[..., Server]) -> None:
    a = servers(1)
    with DaqDataClient(hosts=[a.target]) as client:
        text = client.reflect_services()
    assert "daqdata.DaqData" in text
    assert (
        "rpc StreamImages(daqdata.StreamImagesRequest) returns (stream daqdata.StreamImagesResponse)"
        in text
    )
    assert (
        "rpc UploadImages(stream daqdata.UploadImageRequest) returns (google.protobuf.Empty)"
        in text
    )


async def test_aio_merge_end_rules_and_reflection(servers: Callable[..., Server]) -> None:
    a = servers(1, send(4))
    b = servers(2, send(2, grpc.StatusCode.CANCELLED, "re-init"))
    async with AioDaqDataClient(hosts=[a.target, b.target]) as client:
        stream = await client.stream_images(None, True, True, 0, parse_pano_images=False)
        items = [item async for item in stream]
        assert sorted(modules(items)) == [1, 1, 1, 1, 2, 2]
        assert client.last_stream_status[b.target] == (grpc.StatusCode.CANCELLED, "re-init")
        text = await client.reflect_services(a.target)
    assert "rpc Ping(google.protobuf.Empty) returns (google.protobuf.Empty)" in text


async def test_aio_admission_error_and_stop_event(servers: Callable[..., Server]) -> None:
    healthy = servers(1, forever)
    failing = servers(
        2,
        refuse_after_start(
            healthy, grpc.StatusCode.FAILED_PRECONDITION, "hp_io task is not valid."
        ),
    )
    async with AioDaqDataClient(hosts=[healthy.target, failing.target]) as client:
        stream = await client.stream_images(None, True, True, 0, parse_pano_images=False)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in stream:
                pass
        assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert await asyncio.to_thread(healthy.servicer.cancelled.wait, WAIT)

        healthy.servicer.cancelled.clear()
        stop = asyncio.Event()
        received = 0
        stream = await client.stream_images(
            healthy.target, True, True, 0, parse_pano_images=False, stop_event=stop
        )
        async for _ in stream:
            received += 1
            if received == 3:
                stop.set()
        assert received >= 3
    assert await asyncio.to_thread(healthy.servicer.cancelled.wait, WAIT)


async def test_aio_reconnect_and_upload(servers: Callable[..., Server]) -> None:
    a = servers(5, send(2, grpc.StatusCode.UNAVAILABLE, "restart"), send(1))
    b = servers(6)
    images = [response(9, i).pano_image for i in range(50)]

    async def agen() -> Any:
        for image in images:
            yield image

    async with AioDaqDataClient(hosts=[a.target, b.target]) as client:
        stream = await client.stream_images(
            a.target, True, True, 0, parse_pano_images=False, reconnect=True
        )
        assert len([item async for item in stream]) == 3
        await client.upload_images(None, agen())
        assert await client.init_sim(b.target)
    assert len(a.servicer.stream_requests) == 2
    assert a.servicer.uploaded == images
    assert b.servicer.uploaded == images
    assert b.servicer.init_requests[0].simulate_daq
