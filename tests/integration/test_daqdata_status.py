"""Every row of the DaqData status tables (docs/daqdata.md), against the real daemon.

Each test is named after its row. Mid-stream ends (forced re-init, shutdown) are in
test_daqdata_stream.py; a start failure is `test_init_start_failed_*` here.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2
from grpc_health.v1 import health_pb2

from panoseti_appliance._proto import daq_data_pb2 as pb
from tests.daemons import rpc_details
from tests.integration.test_daqdata_support import (
    STALL_SETTINGS,
    DaqData,
    daqdata,
    deep_update,
    init_request,
    refused_upload,
    rpc_error,
    send_frame,
    stalled_reader,
    stream_request,
    until,
    upload,
    upload_images,
)

SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaqData]:
    """One daemon for the checks that change nothing (admission and validation errors)."""
    with daqdata(tmp_path_factory.mktemp("shared")) as d:
        yield d


def _first_response(d: DaqData, **kw: Any) -> pb.StreamImagesResponse:
    with d.stub() as stub:
        return next(stub.StreamImages(stream_request(**kw), timeout=10))


def _code(err: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    return err.code(), rpc_details(err)


def test_stream_both_flags_false_invalid_argument(shared: DaqData) -> None:
    err = rpc_error(
        lambda: _first_response(shared, stream_movie_data=False, stream_pulse_height_data=False)
    )
    assert _code(err) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "At least one stream flag must be True.",
    )


def test_stream_nan_interval_invalid_argument(shared: DaqData) -> None:
    err = rpc_error(lambda: _first_response(shared, update_interval_seconds=float("nan")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "update_interval_seconds is NaN" in rpc_details(err)


def test_stream_and_upload_shutting_down_unavailable(tmp_path: Path) -> None:
    # A stalled reader keeps the daemon in its shutdown grace period long enough to call it.
    with (
        daqdata(
            tmp_path, deep_update(STALL_SETTINGS, {"daqdata": {"shutdown_grace_period": 20}})
        ) as d,
        stalled_reader(d) as stalled,
    ):
        d.daemon.proc.send_signal(signal.SIGTERM)
        until(lambda: "shutting down" in d.log(), what="shutdown to begin")
        expected = (grpc.StatusCode.UNAVAILABLE, "Server is shutting down.")
        assert _code(rpc_error(lambda: _first_response(d))) == expected
        assert _code(rpc_error(lambda: upload(d, upload_images(1)))) == expected
        # Draining the stalled stream lets it end with the shutdown status too.
        err = rpc_error(lambda: list(stalled))
        assert _code(err) == expected
        assert d.daemon.proc.wait(timeout=30) == 0


def test_stream_and_upload_init_in_progress_unavailable(tmp_path: Path) -> None:
    # A forced InitHpIo waits for the stalled reader (up to 2 s) in STOPPING.
    with daqdata(tmp_path, STALL_SETTINGS) as d, stalled_reader(d), d.stub() as stub:
        result: dict[str, Any] = {}

        def init() -> None:
            result["reply"] = stub.InitHpIo(
                init_request(data_dir=str(tmp_path / "data"), force=True), timeout=30
            )

        thread = threading.Thread(target=init)
        thread.start()
        until(lambda: "hp_io STOPPING" in d.log(), what="the re-init to start")
        expected = (
            grpc.StatusCode.UNAVAILABLE,
            "Server is being configured, please try again soon.",
        )
        assert _code(rpc_error(lambda: _first_response(d))) == expected
        assert _code(rpc_error(lambda: upload(d, upload_images(1)))) == expected
        # Ping has no admission and no locks: OK in the middle of a re-init.
        assert stub.Ping(empty_pb2.Empty(), timeout=10) == empty_pb2.Empty()
        thread.join(timeout=30)
        assert result["reply"].success, result["reply"].error_message


def test_stream_and_upload_hp_io_idle_failed_precondition(tmp_path: Path) -> None:
    with daqdata(tmp_path, {"daqdata": {"init_from_default": False}}) as d:
        expected = (grpc.StatusCode.FAILED_PRECONDITION, "hp_io task is not valid.")
        assert _code(rpc_error(lambda: _first_response(d))) == expected
        assert _code(rpc_error(lambda: upload(d, upload_images(1)))) == expected
        with d.stub() as stub:
            assert stub.Ping(empty_pb2.Empty(), timeout=10) == empty_pb2.Empty()


def test_stream_readers_at_limit_resource_exhausted(tmp_path: Path) -> None:
    with daqdata(tmp_path, {"daqdata": {"max_concurrent_rpcs": 2}}) as d, d.stub() as stub:
        producer = d.producer("ph256")
        producer.connect()
        send_frame(producer, 1)
        calls = [stub.StreamImages(stream_request(), timeout=30) for _ in range(2)]
        for call in calls:
            next(call)  # admitted and streaming
        err = rpc_error(lambda: next(stub.StreamImages(stream_request(), timeout=10)))
        assert _code(err) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "Max clients (2) reached.")
        for call in calls:
            call.cancel()
        producer.close()


@pytest.mark.parametrize("interval", [0.0, 0.0009, float("nan"), float("inf")])
def test_init_interval_too_small_or_not_finite_invalid_argument(
    shared: DaqData, interval: float
) -> None:
    with shared.stub() as stub:
        request = init_request(data_dir=str(shared.tmp / "data"), update_interval_seconds=interval)
        err = rpc_error(lambda: stub.InitHpIo(request, timeout=10))
        assert _code(err) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "update_interval_seconds is below server minimum.",
        )


@pytest.mark.parametrize("name", ["", "nonexistent"])
def test_init_real_mode_bad_data_dir_invalid_argument(shared: DaqData, name: str) -> None:
    data_dir = str(shared.tmp / name) if name else ""  # missing, inside an allowed root
    with shared.stub() as stub:
        err = rpc_error(lambda: stub.InitHpIo(init_request(data_dir=data_dir), timeout=10))
        assert _code(err) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            f"data_dir '{data_dir}' does not exist.",
        )


def test_init_real_mode_relative_data_dir_is_refused(shared: DaqData) -> None:
    """Never resolved against the daemon's working directory, even where that would exist."""
    (shared.tmp / "data").mkdir(exist_ok=True)
    with shared.stub() as stub:
        err = rpc_error(lambda: stub.InitHpIo(init_request(data_dir="data"), timeout=10))
        assert _code(err) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "data_dir 'data' is not an absolute path; give the full path on the DAQ node, "
            "e.g. /mnt/panoseti.",
        )


@pytest.fixture(scope="module")
def restricted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaqData]:
    """A daemon without Hashpipe sockets that requires a running `hashpipe` for real mode."""
    extra = {
        "daqdata": {
            "hashpipe": {"enabled": False},
            "simulator": {"mode": "uds"},
            "require_hashpipe_process": True,
        }
    }
    with daqdata(tmp_path_factory.mktemp("restricted"), extra) as d:
        yield d


def test_init_simulate_unconfigured_failed_precondition(restricted: DaqData) -> None:
    with restricted.stub() as stub:
        err = rpc_error(lambda: stub.InitHpIo(init_request(simulate_daq=True), timeout=10))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert err.details() == (
            "simulation is not configured: simulator mode uds needs daqdata.hashpipe.enabled: "
            "true; enable it or choose another daqdata.simulator.mode"
        )


def test_init_hashpipe_required_and_absent_failed_precondition(restricted: DaqData) -> None:
    from panoseti_appliance.daqdata.server.servicer import hashpipe_running

    assert not hashpipe_running()  # the premise: no `hashpipe` process on this machine
    with restricted.stub() as stub:
        request = init_request(data_dir=str(restricted.tmp / "data"))
        err = rpc_error(lambda: stub.InitHpIo(request, timeout=10))
        assert _code(err) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "Real DAQ software is not active.",
        )


def test_init_module_id_above_16_bits_invalid_argument(shared: DaqData) -> None:
    with shared.stub() as stub:
        request = init_request(data_dir=str(shared.tmp / "data"), module_ids=[3, 70000])
        err = rpc_error(lambda: stub.InitHpIo(request, timeout=10))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "70000" in rpc_details(err)


def test_init_readers_active_no_force_failed_precondition(tmp_path: Path) -> None:
    with daqdata(tmp_path) as d, d.stub() as stub:
        producer = d.producer("ph256")
        producer.connect()
        send_frame(producer, 1)
        call = stub.StreamImages(stream_request(), timeout=30)
        next(call)
        request = init_request(data_dir=str(tmp_path / "data"))
        err = rpc_error(lambda: stub.InitHpIo(request, timeout=10))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert rpc_details(err).startswith("Cannot modify server state: 1 clients are streaming: [")
        assert "ipv4:127.0.0.1:" in rpc_details(err)
        # Nothing changed: the stream still delivers.
        send_frame(producer, 1)
        assert next(call).pano_image.module_id == 1
        call.cancel()
        producer.close()


def test_init_start_failed_ok_with_reason_previous_restored(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-movie.pff"
    bad.write_bytes(b"this is not a PFF file")
    extra = {"daqdata": {"simulator": {"mode": "uds", "movie_pff_path": str(bad)}}}
    with daqdata(tmp_path, extra) as d, d.stub() as stub:
        reply = stub.InitHpIo(init_request(simulate_daq=True), timeout=20)
        assert not reply.success
        assert str(bad) in reply.error_message
        assert reply.error_message.endswith("; previous configuration restored")
        # The previous (boot) configuration serves again.
        producer = d.producer("ph256")
        producer.connect()
        send_frame(producer, 5)
        assert _first_response(d).pano_image.module_id == 5
        producer.close()


def test_init_start_failed_ok_with_reason_hp_io_idle(tmp_path: Path) -> None:
    # The boot start fails (its data directory is missing; no retry for 300 s), then InitHpIo
    # fails too (the simulated uds mode still polls files, from a directory that is missing),
    # and there is no previous configuration to restore.
    extra = {
        "daqdata": {
            "filesystem_poll": {"enabled": True},
            "hp_io_restart_backoff_seconds": [300],
            "simulator": {"mode": "uds"},
        },
        "hp_io": {"data_dir": str(tmp_path / "missing")},
    }
    with daqdata(tmp_path, extra, wait=False) as d, d.stub() as stub:
        d.daemon.wait_answering()
        until(lambda: "hp_io did not start from the configured defaults" in d.log())
        reply = stub.InitHpIo(init_request(simulate_daq=True), timeout=20)
        assert not reply.success
        assert reply.error_message == (
            f"filesystem_poll source: data_dir '{tmp_path / 'sim'}' does not exist or is not a "
            "directory; hp_io is idle"
        )
        err = rpc_error(lambda: _first_response(d))
        assert _code(err) == (grpc.StatusCode.FAILED_PRECONDITION, "hp_io task is not valid.")
        # A good configuration repairs the daemon.
        reply = stub.InitHpIo(init_request(data_dir=str(tmp_path / "data")), timeout=20)
        assert reply.success
        assert reply.error_message == ""
        until(lambda: d.daemon.health("") == SERVING, what="overall SERVING")


def test_upload_invalid_image_invalid_argument(shared: DaqData) -> None:
    requests = upload_images(2)
    bad = upload_images(1)[0]
    del bad.pano_image.image_array[-1]
    details = refused_upload(shared, [*requests, bad])
    assert details.startswith("image 2: image_array has 255 values")
    # The images before the bad one were delivered.
    got = _first_response(shared, stream_movie_data=False).pano_image
    assert (got.module_id, got.file, got.frame_number) == (7, "upload.pff", 1)
