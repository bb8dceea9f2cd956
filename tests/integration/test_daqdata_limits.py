"""DaqData's resource limits against the real daemon: Hashpipe connections per socket, streams
per client host, streams whose client reads nothing, and gRPC message sizes.

Each limit must refuse only what goes beyond it, name the setting that lifts it, and leave the
daemon serving everyone else.
"""

from __future__ import annotations

import socket
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2
from pydantic import ValidationError

from panoseti_appliance._proto import daq_data_pb2_grpc as pb_grpc
from panoseti_appliance.config.models import DaqDataConfig
from tests.daemons import free_tcp_port, rpc_details, running_daemon
from tests.integration.test_daqdata_support import (
    Collector,
    DaqData,
    daqdata,
    pkt_num,
    rpc_error,
    send_frame,
    settings_for,
    stream_request,
    until,
    upload_images,
)
from tests.integration.test_faults_hashpipe import idle_connections

CONNECTION_LIMIT = 2
STREAM_LIMIT = 2
WRITE_TIMEOUT_S = 2
#: The receive limit in the message size test: the smallest the setting allows (1 MiB).
RECEIVE_LIMIT = 1 << 20
#: Modules a flooding producer cycles through, so that every tick has many new frames to send.
FLOOD_MODULES = 50


def ping(d: DaqData) -> bool:
    with d.stub() as stub:
        stub.Ping(empty_pb2.Empty(), timeout=10)
    return True


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the daemon closed this connection (recv sees end of stream, or a reset)."""
    sock.settimeout(30)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_producer_connections_beyond_the_limit_are_closed_and_counted(tmp_path: Path) -> None:
    extra = {
        "daqdata": {
            "hashpipe": {"max_connections_per_socket": CONNECTION_LIMIT},
            "stats_log_interval_seconds": 0.2,
        },
        "logging": {"level": "debug"},
    }
    with daqdata(tmp_path, extra) as d:
        producer = d.producer("ph256")
        idle = idle_connections(d.socket_path("ph256"), CONNECTION_LIMIT - 1)
        until(lambda: d.log().count("producer connected") == CONNECTION_LIMIT, what="both in")
        refused = idle_connections(d.socket_path("ph256"), 2)
        try:
            assert all(closed_by_peer(s) for s in refused)
            until(lambda: "refused_connections=2" in d.log(), what="both refusals counted")
            log = d.log()
            # One warning for both, naming the setting; the two held connections stay.
            assert log.count("daqdata.hashpipe.max_connections_per_socket allows") == 1
            assert log.count("producer connected") == CONNECTION_LIMIT
            assert "closed (" not in log
            # Another socket has its own count.
            with d.producer("img16"):
                until(lambda: d.log().count("producer connected") == 3, what="img16 accepted")
            with Collector(d, stream_request()) as stream:
                pkt = send_frame(producer, 4)
                stream.wait_for(lambda img: pkt_num(img) == pkt, "a frame from a held connection")
            assert ping(d)
        finally:
            for s in [*idle, *refused]:
                s.close()
            producer.close()


def test_streams_beyond_the_per_host_limit_are_refused_others_served(tmp_path: Path) -> None:
    extra = {"daqdata": {"max_streams_per_peer": STREAM_LIMIT}}
    with daqdata(tmp_path, extra) as d:
        producer = d.producer("ph256")
        send_frame(producer, 1)
        held = [Collector(d, stream_request()) for _ in range(STREAM_LIMIT)]
        try:
            for stream in held:
                stream.wait_for(lambda img: img.module_id == 1, "a held stream's first image")
            with d.stub() as stub:
                err = rpc_error(lambda: next(stub.StreamImages(stream_request(), timeout=30)))
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert err.details() == (
                f"Max streams per client host ({STREAM_LIMIT}) reached; close some or raise "
                "daqdata.max_streams_per_peer."
            )
            assert "(daqdata.max_streams_per_peer)" in d.log()
            # A client on the unix socket is another host: served while loopback is full.
            unix_target = f"unix://{tmp_path / 'grpc' / 'daqdata.sock'}"
            with grpc.insecure_channel(unix_target) as channel:
                call = pb_grpc.DaqDataStub(channel).StreamImages(stream_request(), timeout=30)
                assert next(call).pano_image.module_id == 1
                call.cancel()
            # The held streams are untouched.
            pkt = send_frame(producer, 1)
            for stream in held:
                stream.wait_for(lambda img: pkt_num(img) == pkt, "the next frame on a held one")
        finally:
            for stream in held:
                stream.close()
            producer.close()


def test_ipv6_clients_are_counted_per_host_apart_from_ipv4_ones(tmp_path: Path) -> None:
    port4, port6 = free_tcp_port(), free_tcp_port()
    listen = [f"127.0.0.1:{port4}", f"[::1]:{port6}"]
    settings = settings_for(
        tmp_path, port4, {"daqdata": {"max_streams_per_peer": 1, "listen": listen}}
    )
    with running_daemon("panoseti-daqdata", tmp_path, settings, listen[0]) as daemon:
        producer = DaqData(daemon, tmp_path, port4).producer("ph256")
        send_frame(producer, 1)
        with (
            grpc.insecure_channel(f"ipv6:[::1]:{port6}") as v6,
            grpc.insecure_channel(listen[0]) as v4,
        ):
            held = pb_grpc.DaqDataStub(v6).StreamImages(stream_request(), timeout=30)
            assert next(held).pano_image.module_id == 1
            # The same IPv6 host again: over its limit, whatever the client port.
            again = pb_grpc.DaqDataStub(v6).StreamImages(stream_request(), timeout=30)
            err = rpc_error(lambda: next(again))
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert rpc_details(err).startswith("Max streams per client host (1) reached")
            # IPv4 loopback is another host: served.
            other = pb_grpc.DaqDataStub(v4).StreamImages(stream_request(), timeout=30)
            assert next(other).pano_image.module_id == 1
            held.cancel()
            other.cancel()
        producer.close()


def test_a_stream_whose_client_reads_nothing_is_ended_and_frees_its_slot(tmp_path: Path) -> None:
    extra = {"daqdata": {"stream_write_timeout_seconds": WRITE_TIMEOUT_S, "max_concurrent_rpcs": 1}}
    reason = f"read nothing for {WRITE_TIMEOUT_S} s"
    with daqdata(tmp_path, extra) as d:
        producer = d.producer("img16")
        send_frame(producer, 0)
        channel = grpc.insecure_channel(d.target)
        try:
            stalled = pb_grpc.DaqDataStub(channel).StreamImages(stream_request(), timeout=120)
            next(stalled)  # admitted; from here on this client reads nothing

            def flood_until_ended() -> bool:
                for module in range(FLOOD_MODULES):
                    send_frame(producer, module)
                return reason in d.log()

            until(flood_until_ended, what="the unread stream ended")
            until(lambda: "(0 readers)" in d.log(), what="its slot freed")
            # The only slot is free again: a new client is served.
            with Collector(d, stream_request()) as stream:
                pkt = send_frame(producer, 0)
                stream.wait_for(lambda img: pkt_num(img) == pkt, "a frame on the next stream")
            # Once it reads again, the stalled client learns why its stream ended.
            with pytest.raises(grpc.RpcError) as info:
                for _ in stalled:
                    pass
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            details = str(info.value.details())
            assert reason in details
            assert "daqdata.stream_write_timeout_seconds" in details
        finally:
            channel.close()
            producer.close()


def test_a_message_above_the_receive_limit_is_refused_and_the_daemon_serves_on(
    tmp_path: Path,
) -> None:
    extra = {"daqdata": {"max_receive_message_bytes": RECEIVE_LIMIT}}
    with daqdata(tmp_path, extra) as d, d.stub() as stub:
        big = upload_images(1)[0]
        big.pano_image.header.update({"padding": "x" * (2 * RECEIVE_LIMIT)})
        err = rpc_error(lambda: stub.UploadImages(iter([big]), timeout=30))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert ping(d)
        # An upload within the limit still goes through, and streams see it.
        with Collector(d, stream_request()) as stream:
            stub.UploadImages(iter(upload_images(3)), timeout=30)
            stream.wait_for(lambda img: pkt_num(img) == 2, "the last uploaded image")


def test_a_send_limit_below_the_largest_acceptable_image_is_refused_at_load() -> None:
    with pytest.raises(ValidationError, match=r"max_send_message_bytes \(1048576\) is below"):
        DaqDataConfig(max_upload_header_bytes=1 << 20, max_send_message_bytes=1 << 20)
    assert DaqDataConfig(max_upload_header_bytes=1 << 20, max_send_message_bytes=2 << 20)
