"""Who may call the write RPCs (access.daqdata_write, access.ublox_write, docs/security.md):
`local` admits the unix socket and loopback TCP but not a client on another host (a network
namespace here); `authenticated` admits the unix socket only when no client certificate is
offered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2

from panoseti_appliance._proto import daq_data_pb2_grpc as pb_grpc
from panoseti_appliance._proto import ublox_control_pb2 as ublox_pb
from panoseti_appliance._proto import ublox_control_pb2_grpc as ublox_grpc
from tests.daemons import free_tcp_port, rpc_details, running_daemon
from tests.integration.test_access_tls import daqdata_with
from tests.integration.test_daqdata_support import (
    init_request,
    rpc_error,
    settings_for,
    upload_images,
)
from tests.integration.test_ublox_init import emulator, f9t_cfg, init
from tests.netns import fleet, netns_missing
from tests.prerequisites import unavailable

__all__ = ["emulator", "f9t_cfg"]  # fixtures used by this module


def test_authenticated_refuses_loopback_tcp_writes_and_admits_the_unix_socket(
    tmp_path: Path,
) -> None:
    with daqdata_with(tmp_path, {"daqdata_write": "authenticated"}) as (daemon, tcp):
        with grpc.insecure_channel(tcp) as channel:
            stub = pb_grpc.DaqDataStub(channel)
            stub.Ping(empty_pb2.Empty(), timeout=10)  # read-only RPCs stay open
            init = rpc_error(lambda: stub.InitHpIo(init_request(), timeout=20))
            upload = rpc_error(lambda: stub.UploadImages(iter(upload_images(1)), timeout=10))
        for err, rpc in ((init, "InitHpIo"), (upload, "UploadImages")):
            assert err.code() == grpc.StatusCode.PERMISSION_DENIED
            details = rpc_details(err)
            assert details.startswith(f"{rpc} is not allowed from ipv4:127.0.0.1:"), details
            assert "access.daqdata_write is 'authenticated'" in details
            assert "call it through the daemon's unix socket" in details
        with grpc.insecure_channel(daemon.target) as channel:
            stub = pb_grpc.DaqDataStub(channel)
            reply = stub.InitHpIo(init_request(data_dir=str(tmp_path / "data")), timeout=20)
            assert reply.success, reply.error_message
            stub.UploadImages(iter(upload_images(1)), timeout=10)


def test_local_refuses_writes_from_another_host_and_admits_the_unix_socket(
    tmp_path: Path,
) -> None:
    missing = netns_missing()
    if missing is not None:
        unavailable(missing)
    port = free_tcp_port()
    settings = settings_for(tmp_path, port)
    unix = f"unix://{tmp_path / 'grpc' / 'daqdata.sock'}"
    settings["daqdata"]["listen"] = [f"0.0.0.0:{port}", unix]
    with (
        fleet(1) as (ns,),
        running_daemon("panoseti-daqdata", tmp_path, settings, unix, prefix=ns.prefix),
    ):
        with grpc.insecure_channel(f"{ns.address}:{port}") as channel:
            stub = pb_grpc.DaqDataStub(channel)
            stub.Ping(empty_pb2.Empty(), timeout=10)
            err = rpc_error(lambda: stub.InitHpIo(init_request(), timeout=20))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        details = rpc_details(err)
        assert details.startswith(f"InitHpIo is not allowed from ipv4:{ns.peer}:"), details
        assert "access.daqdata_write is 'local'" in details
        with grpc.insecure_channel(unix) as channel:
            reply = pb_grpc.DaqDataStub(channel).InitHpIo(
                init_request(data_dir=str(tmp_path / "data")), timeout=20
            )
        assert reply.success, reply.error_message


def test_ublox_write_authenticated_refuses_init_f9t_over_tcp_and_admits_the_unix_socket(
    tmp_path: Path, f9t_cfg: dict[str, Any]
) -> None:
    port = free_tcp_port()
    unix = f"unix://{tmp_path / 'ubloxcontrol.sock'}"
    settings = {
        "ublox": {"listen": [f"127.0.0.1:{port}", unix]},
        "access": {"ublox_write": "authenticated"},
    }
    with running_daemon("panoseti-ubloxcontrol", tmp_path, settings, unix):
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = ublox_grpc.UbloxControlStub(channel)
            err = rpc_error(lambda: init(stub, f9t_cfg))
            # Reading is not guarded: CaptureUblox gets its own answer (no receiver yet).
            capture = stub.CaptureUblox(ublox_pb.CaptureUbloxRequest(), timeout=10)
            read = rpc_error(lambda: next(capture))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        details = rpc_details(err)
        assert details.startswith("InitF9t is not allowed from ipv4:127.0.0.1:"), details
        assert "access.ublox_write is 'authenticated'" in details
        assert read.code() == grpc.StatusCode.FAILED_PRECONDITION
        with grpc.insecure_channel(unix) as channel:
            reply = init(ublox_grpc.UbloxControlStub(channel), f9t_cfg)
        assert reply.init_status == ublox_pb.InitF9tResponse.SUCCESS, reply.message
