"""StreamImages end to end: snapshot ticks, ordering, filters, freshness per (module, dp),
Hashpipe producers misbehaving, forced re-init, shutdown, health and the reader limit.

Every test runs the real daemon (tests/daemons.py) and feeds it through its Hashpipe sockets
with Hashpipe-like producers (tests/producers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from panoseti_appliance._proto import daq_data_pb2 as pb
from panoseti_appliance._proto import daq_data_pb2_grpc as pb_grpc
from panoseti_appliance.grpcstubs import health_stub
from tests.daemons import rpc_details
from tests.integration.test_daqdata_support import (
    DaqData,
    daqdata,
    init_request,
    pkt_num,
    rpc_error,
    send_frame,
    socket_header,
    stream_request,
    until,
)
from tests.producers import HashpipeProducer, socket_frame

PRODUCTS = ("ph256", "img16", "ph1024", "img8")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _key(response: pb.StreamImagesResponse) -> tuple[int, str]:
    return response.pano_image.module_id, response.pano_image.file.removeprefix("uds_")


def _producers(d: DaqData, products: tuple[str, ...] = PRODUCTS) -> dict[str, HashpipeProducer]:
    out = {dp: d.producer(dp) for dp in products}
    for producer in out.values():
        producer.connect()
    return out


def _read_until(
    responses: Iterator[pb.StreamImagesResponse], wanted: tuple[int, str], pkt: int
) -> list[pb.StreamImagesResponse]:
    """Read until the frame (module, dp) with pkt_num `pkt` arrives; everything read."""
    got = []
    for response in responses:
        got.append(response)
        if _key(response) == wanted and pkt_num(response.pano_image) == pkt:
            return got
    raise AssertionError(f"stream ended before {wanted} pkt {pkt}")


def test_first_tick_sends_held_frames_in_module_then_product_order(tmp_path: Path) -> None:
    with daqdata(tmp_path) as d, d.stub() as stub:
        producers = _producers(d)
        for module in (3, 1):
            for dp in PRODUCTS:
                send_frame(producers[dp], module)
        # Wait until the hub holds all eight (module, dp) entries.
        probe = stub.StreamImages(stream_request(), timeout=30)
        seen: set[tuple[int, str]] = set()
        for response in probe:
            seen.add(_key(response))
            if len(seen) == 8:
                break
        probe.cancel()
        call = stub.StreamImages(stream_request(), timeout=30)
        first = [_key(next(call)) for _ in range(8)]
        assert first == [(m, dp) for m in (1, 3) for dp in ("img16", "img8", "ph256", "ph1024")]
        # Nothing is repeated: the next response is the next new frame.
        send_frame(producers["ph256"], 3)
        response = next(call)
        assert _key(response) == (3, "ph256")
        assert pkt_num(response.pano_image) == 1
        assert response.pano_image.frame_number == 1
        assert response.timestamp.seconds > 1_700_000_000  # send time, not the 1970 epoch
        assert response.name == ""
        assert response.message == ""
        call.cancel()
        for producer in producers.values():
            producer.close()


def test_filters_select_modules_and_products(tmp_path: Path) -> None:
    with daqdata(tmp_path) as d, d.stub() as stub:
        producers = _producers(d, ("ph256", "img16"))
        call = stub.StreamImages(
            stream_request(stream_pulse_height_data=False, module_ids=[3, 99999]), timeout=30
        )
        for module in (1, 2, 3):
            send_frame(producers["ph256"], module)
            send_frame(producers["img16"], module)
        response = next(call)
        assert _key(response) == (3, "img16")
        image = response.pano_image
        assert image.type == pb.PanoImage.Type.MOVIE
        assert list(image.shape) == [32, 32]
        assert image.bytes_per_pixel == 2
        assert len(image.image_array) == 1024
        send_frame(producers["img16"], 2)
        send_frame(producers["img16"], 3)
        assert _key(next(call)) == (3, "img16")
        call.cancel()
        for producer in producers.values():
            producer.close()


def test_busy_module_never_starves_a_quiet_one(tmp_path: Path) -> None:
    """Module 1 floods ph256 while module 2 sends rarely; every module-2 frame is delivered."""
    with daqdata(tmp_path) as d, d.stub() as stub:
        stop = threading.Event()
        busy = d.producer("ph256")
        busy.connect()

        def flood() -> None:
            while not stop.is_set():
                send_frame(busy, 1)
                stop.wait(0.0005)  # pacing only

        flooder = threading.Thread(target=flood)
        flooder.start()
        quiet = d.producer("ph256")
        quiet.connect()
        call = stub.StreamImages(stream_request(update_interval_seconds=0.05), timeout=60)
        try:
            for i in range(5):
                send_frame(quiet, 2)
                got = _read_until(call, (2, "ph256"), i)
                busy_frames = [r for r in got if _key(r) == (1, "ph256")]
                assert busy_frames, "the busy module must keep arriving too"
        finally:
            stop.set()
            flooder.join()
            call.cancel()
            busy.close()
            quiet.close()


@contextlib.contextmanager
def _ph256_stream(
    tmp_path: Path,
    module: int = 4,
    extra: dict[str, Any] | None = None,
    timeout: float = 30,
    **request: Any,
) -> Iterator[
    tuple[DaqData, pb_grpc.DaqDataStub, HashpipeProducer, Iterator[pb.StreamImagesResponse]]
]:
    """The daemon (with `extra` settings), a ph256 producer that has sent `module`'s pkt 0, and a
    stream (`stream_request(**request)`, deadline `timeout`) that has received that frame."""
    with daqdata(tmp_path, extra) as d, d.stub() as stub:
        producer = d.producer("ph256")
        producer.connect()
        send_frame(producer, module)  # pkt 0
        call = stub.StreamImages(stream_request(**request), timeout=timeout)
        first = next(call)
        assert (_key(first), pkt_num(first.pano_image)) == ((module, "ph256"), 0)
        try:
            yield d, stub, producer, call
        finally:
            call.cancel()


def test_interval_is_clamped_to_the_configured_maximum(tmp_path: Path) -> None:
    extra = {"daqdata": {"max_client_update_interval_seconds": 0.2}}
    with _ph256_stream(tmp_path, 1, extra, update_interval_seconds=3600) as (_, _, producer, call):
        send_frame(producer, 1)
        # With an hour-long interval this would hit the 30 s deadline instead.
        assert pkt_num(next(call).pano_image) == 1
        producer.close()


def test_torn_and_garbage_bytes_are_dropped_and_valid_frames_arrive(tmp_path: Path) -> None:
    with _ph256_stream(tmp_path) as (d, _, producer, call):
        torn = socket_frame("ph256", 4, 99, header=socket_header("ph256", 99))
        producer.send_raw(torn.wire[:-100])  # a short writev: header and part of the pixels
        send_frame(producer, 4)  # pkt 1 starts inside the torn frame's pixel bytes
        assert pkt_num(next(call).pano_image) == 1
        producer.send_garbage(500)
        send_frame(producer, 4)  # pkt 2
        assert pkt_num(next(call).pano_image) == 2
        producer.close()
        until(lambda: re.search(r"connection #\d+: closed .*torn=1", d.log()), what="torn count")
        assert re.search(r"connection #\d+: closed .*garbage_bytes=\d+", d.log())


def test_headers_clients_could_not_decode_are_dropped_and_streams_keep_going(
    tmp_path: Path,
) -> None:
    # Valid JSON that no Struct can carry: a 400-digit integer (beyond a double) and nesting
    # deeper than protobuf decoders accept. Accepted, either would end every stream INTERNAL.
    huge = b'{"quabo_num": 0, "pkt_num": 1' + b"0" * 400 + b', "pkt_tai": 0, "pkt_nsec": 0, '
    huge += b'"tv_sec": 0, "tv_usec": 0}'
    deep = json.loads(socket_header("ph256", 98))
    deep["extra"] = json.loads("[" * 60 + "]" * 60)
    with _ph256_stream(tmp_path) as (d, _, producer, call):
        producer.send(4, header=huge)
        producer.send(4, header=json.dumps(deep).encode())
        send_frame(producer, 4)  # pkt 3: the producer's index counted the two bad frames
        image = next(call).pano_image
        assert pkt_num(image) == 3
        assert image.frame_number == 1  # the bad frames were never ingested
        producer.close()
        until(lambda: re.search(r"connection #\d+: closed .*bad_header=2", d.log()), what="count")


def test_producer_reconnect_keeps_frame_numbers_counting(tmp_path: Path) -> None:
    with daqdata(tmp_path) as d, d.stub() as stub:
        producer = d.producer("img16")
        producer.connect()
        call = stub.StreamImages(stream_request(), timeout=30)
        send_frame(producer, 6)
        assert next(call).pano_image.frame_number == 0
        producer.reconnect()
        send_frame(producer, 6)
        image = next(call).pano_image
        assert (image.file, image.frame_number, pkt_num(image)) == ("uds_img16", 1, 1)
        call.cancel()
        producer.close()


def test_forced_reinit_cancels_a_slow_stream_and_serves_the_new_config(tmp_path: Path) -> None:
    # A 60 s interval: after its first tick the stream sleeps; the 20 s deadline would end it
    # with DEADLINE_EXCEEDED if the re-init did not wake and end it.
    slow_stream = _ph256_stream(tmp_path, 1, timeout=20, update_interval_seconds=60)
    with slow_stream as (_, stub, producer, slow):
        reply = stub.InitHpIo(
            init_request(data_dir=str(tmp_path / "data"), module_ids=[9], force=True), timeout=20
        )
        assert reply.success
        assert reply.error_message == ""
        err = rpc_error(lambda: next(slow))
        assert err.code() == grpc.StatusCode.CANCELLED
        assert re.fullmatch(
            r"hp_io reconfigured by InitHpIo\(force=true\) from ipv4:127\.0\.0\.1:\d+; "
            r"re-subscribe",
            rpc_details(err),
        )
        # The new config: the hub was cleared and only module 9 is ingested.
        call = stub.StreamImages(stream_request(), timeout=30)
        send_frame(producer, 1)
        send_frame(producer, 9)
        assert _key(next(call)) == (9, "ph256")
        call.cancel()
        producer.close()


def test_sigterm_ends_open_stream_unavailable_and_exits_zero(tmp_path: Path) -> None:
    with _ph256_stream(tmp_path, 1, update_interval_seconds=10) as (d, _, producer, call):
        d.daemon.proc.send_signal(signal.SIGTERM)
        err = rpc_error(lambda: next(call))
        assert (err.code(), err.details()) == (
            grpc.StatusCode.UNAVAILABLE,
            "Server is shutting down.",
        )
        assert d.daemon.proc.wait(timeout=30) == 0
        producer.close()


def test_health_follows_hp_io_and_shutdown(tmp_path: Path) -> None:
    # The boot-time start fails (its data directory is missing) and is not retried soon.
    extra = {
        "daqdata": {"filesystem_poll": {"enabled": True}, "hp_io_restart_backoff_seconds": [300]},
        "hp_io": {"data_dir": str(tmp_path / "not-yet")},
    }
    with daqdata(tmp_path, extra, wait=False) as d, d.stub() as stub:
        d.daemon.wait_answering()
        # It answers (InitHpIo can repair it) but says it is not serving, and why.
        until(lambda: d.daemon.health("") == NOT_SERVING, what="overall NOT_SERVING")
        assert d.daemon.health("daqdata.DaqData") == NOT_SERVING
        until(lambda: "restarting in 300 s" in d.log(), what="the restart to be scheduled")
        reply = stub.InitHpIo(init_request(data_dir=str(tmp_path / "data")), timeout=20)
        assert reply.success
        until(lambda: d.daemon.health("daqdata.DaqData") == SERVING, what="DaqData SERVING")
        until(lambda: d.daemon.health("") == SERVING, what="overall SERVING")
        with grpc.insecure_channel(d.target) as channel:
            watch = health_stub(channel).Watch(
                health_pb2.HealthCheckRequest(service=""), timeout=30
            )
            assert next(watch).status == SERVING
            d.daemon.proc.send_signal(signal.SIGTERM)
            assert next(watch).status == NOT_SERVING
        assert d.daemon.proc.wait(timeout=30) == 0


def test_failed_boot_start_is_retried_until_hp_io_runs(tmp_path: Path) -> None:
    data = tmp_path / "later"
    extra = {
        "daqdata": {"filesystem_poll": {"enabled": True}, "hp_io_restart_backoff_seconds": [0.2]},
        "hp_io": {"data_dir": str(data)},
    }
    with daqdata(tmp_path, extra, wait=False) as d:
        d.daemon.wait_answering()
        until(lambda: "restarting in 0.2 s" in d.log(), what="a scheduled restart")
        assert d.daemon.health("daqdata.DaqData") == NOT_SERVING
        data.mkdir()
        until(lambda: d.daemon.health("") == SERVING, what="hp_io up by itself")
        assert d.daemon.health("daqdata.DaqData") == SERVING
        assert "hp_io restarted after: " in d.log()


def test_max_concurrent_streams_then_the_next_is_refused(tmp_path: Path) -> None:
    async def scenario(d: DaqData) -> None:
        async with grpc.aio.insecure_channel(d.target) as channel:
            stub = pb_grpc.DaqDataStub(channel)
            calls = [stub.StreamImages(stream_request(), timeout=60) for _ in range(100)]
            firsts = await asyncio.gather(*(call.read() for call in calls))
            assert all(
                isinstance(r, pb.StreamImagesResponse) and r.pano_image.module_id == 1
                for r in firsts
            )
            extra = stub.StreamImages(stream_request(), timeout=30)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await extra.read()  # the 101st stream is refused
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert info.value.details() == "Max clients (100) reached."
            for call in calls:
                call.cancel()

    # All 100 come from one host: lift the per-host limit so that only max_concurrent_rpcs bites.
    with daqdata(tmp_path, {"daqdata": {"max_streams_per_peer": 100}}) as d:
        producer = d.producer("ph256")
        producer.connect()
        send_frame(producer, 1)
        asyncio.run(scenario(d))
        producer.close()


def _failing_simulator(sim: Path, backoff: float) -> dict[str, Any]:
    """Settings whose simulator fails at its next file roll-over once `sim` is removed."""
    return {
        "daqdata": {
            "filesystem_poll": {"enabled": True},
            "hp_io_restart_backoff_seconds": [backoff],
            "simulator": {
                "mode": "filesystem_poll",
                "frames_per_pff": 2,
                "update_interval_seconds": 0.02,
                "sim_data_dir": str(sim),
            },
        }
    }


def _break_simulator(d: DaqData, sim: Path) -> None:
    def remove_run_dir() -> bool:
        shutil.rmtree(sim, ignore_errors=True)
        return "hp_io stopped" in d.log() or "simulator filesystem_poll failed" in d.log()

    until(remove_run_dir, what="the simulator to fail")


def test_hp_io_failure_ends_streams_unavailable_with_the_reason(tmp_path: Path) -> None:
    # The simulator is part of hp_io; when its run directory vanishes it fails at the next
    # file roll-over, which stops hp_io (restarted only after 300 s here).
    sim = tmp_path / "sim"
    with daqdata(tmp_path, _failing_simulator(sim, 300)) as d, d.stub() as stub:
        reply = stub.InitHpIo(init_request(simulate_daq=True, force=True), timeout=20)
        assert reply.success, reply.error_message
        call = stub.StreamImages(stream_request(), timeout=30)
        next(call)
        _break_simulator(d, sim)
        err = rpc_error(lambda: list(call))
        assert err.code() == grpc.StatusCode.UNAVAILABLE
        assert rpc_details(err).startswith("hp_io stopped: simulator filesystem_poll failed: ")
        until(lambda: d.daemon.health("daqdata.DaqData") == NOT_SERVING, what="NOT_SERVING")
        until(lambda: d.daemon.health("") == NOT_SERVING, what="overall NOT_SERVING")
        err = rpc_error(lambda: next(stub.StreamImages(stream_request(), timeout=10)))
        assert (err.code(), err.details()) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "hp_io task is not valid.",
        )


def test_failed_hp_io_restarts_by_itself_and_streams_again(tmp_path: Path) -> None:
    sim = tmp_path / "sim"
    with daqdata(tmp_path, _failing_simulator(sim, 0.5)) as d, d.stub() as stub:
        reply = stub.InitHpIo(init_request(simulate_daq=True, force=True), timeout=20)
        assert reply.success, reply.error_message
        next(stub.StreamImages(stream_request(), timeout=30))
        _break_simulator(d, sim)
        until(lambda: "hp_io restarted after: simulator filesystem_poll failed" in d.log())
        until(lambda: d.daemon.health("") == SERVING, what="overall SERVING again")
        response = next(stub.StreamImages(stream_request(), timeout=30))
        assert response.pano_image.module_id == 224  # the simulator's module, flowing again
