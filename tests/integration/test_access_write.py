"""Who may call the write RPCs (access.daqdata_write, docs/security.md): `local` admits the unix
socket and loopback TCP but not a client on another host (a network namespace here);
`authenticated` admits the unix socket only when no client certificate is offered."""

from __future__ import annotations

from pathlib import Path

import grpc
from google.protobuf import empty_pb2

from panoseti_appliance._proto import daq_data_pb2_grpc as pb_grpc
from tests.daemons import free_tcp_port, rpc_details, running_daemon
from tests.integration.test_access_tls import daqdata_with
from tests.integration.test_daqdata_support import (
    init_request,
    rpc_error,
    settings_for,
    upload_images,
)
from tests.netns import fleet, netns_missing
from tests.prerequisites import unavailable


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
