"""A real `panoseti-daqdata` against hostile requests (docs/daqdata.md, "Limits and hostile
input"): bounded uploads, data_dir held to the allowed roots, and every RPC answering malformed
input with the client's error status, a short message, no traceback, and Ping still answering."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panoseti_appliance._proto import daq_data_pb2 as pb
from panoseti_appliance.daqdata.client import DaqDataClient
from panoseti_appliance.runtime.bounded import MESSAGE_CHARS
from tests.integration.test_daqdata_support import (
    Collector,
    DaqData,
    daqdata,
    init_request,
    refused_upload,
    rpc_error,
    stream_request,
    upload,
    upload_images,
)

#: What a default gRPC client accepts (and a default server receives).
GRPC_DEFAULT_MESSAGE_BYTES = 4 * 1024 * 1024
#: The families a client's bad input may get; never UNKNOWN or INTERNAL.
CLIENT_ERRORS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaqData]:
    """One daemon for the module, data_dir limited to its `runs` directory."""
    tmp = tmp_path_factory.mktemp("hostile")
    (tmp / "runs" / "night1").mkdir(parents=True)
    extra = {
        "daqdata": {"allowed_data_roots": [str(tmp / "runs")]},
        "hp_io": {"data_dir": str(tmp / "runs")},
    }
    with daqdata(tmp, extra) as d:
        yield d


def _oversized_upload() -> pb.UploadImageRequest:
    """A valid ph256 upload whose request just fits a default server's receive limit, so its
    streamed form (the request plus a timestamp) is larger than a default client accepts."""
    request = upload_images(1, module=9)[0]
    image = request.pano_image
    image.header.update({"junk": ""})
    padding = GRPC_DEFAULT_MESSAGE_BYTES - request.ByteSize() - 64
    image.header["junk"] = "x" * padding
    while request.ByteSize() < GRPC_DEFAULT_MESSAGE_BYTES - 2:
        padding += 1
        image.header["junk"] = "x" * padding
    assert request.ByteSize() <= GRPC_DEFAULT_MESSAGE_BYTES
    return request


def test_oversized_upload_is_refused_and_streams_continue(hostile: DaqData) -> None:
    reader = Collector(hostile, stream_request(stream_movie_data=False, module_ids=[9]))
    try:
        details = refused_upload(hostile, [_oversized_upload()])
        assert "image 0: header is" in details
        assert "daqdata.max_upload_header_bytes" in details
        later = upload_images(3, module=9)[2]
        reader.wait_for(
            lambda image: image.frame_number == 2,
            "a later upload on the same stream",
            act=lambda: upload(hostile, [later]),
        )
    finally:
        reader.close()


def test_upload_with_a_long_file_name_is_refused(hostile: DaqData) -> None:
    request = upload_images(1, module=10)[0]
    request.pano_image.file = "f" * 5000
    details = refused_upload(hostile, [request])
    assert details.startswith("image 0: file is 5000 bytes; at most 4096")


def _init(d: DaqData, data_dir: str) -> Any:
    with d.stub() as stub:
        return stub.InitHpIo(init_request(data_dir=data_dir, force=True), timeout=30)


@pytest.mark.parametrize("where", ["/", "/etc", "{runs}/../..", "{runs}/escape", "{tmp}"])
def test_init_data_dir_outside_the_allowed_roots_is_refused(hostile: DaqData, where: str) -> None:
    runs = hostile.tmp / "runs"
    with contextlib.suppress(FileExistsError):
        os.symlink("/etc", runs / "escape")
    data_dir = where.format(runs=runs, tmp=hostile.tmp)
    err = rpc_error(lambda: _init(hostile, data_dir))
    assert err.code() is grpc.StatusCode.FAILED_PRECONDITION
    details = err.details() or ""
    assert "is outside the allowed data roots" in details
    assert f"({runs}; daqdata.allowed_data_roots)" in details


def test_init_data_dir_inside_an_allowed_root_runs(hostile: DaqData) -> None:
    response = _init(hostile, str(hostile.tmp / "runs" / "night1"))
    assert response.success, response.error_message


# ---- every RPC with hostile input --------------------------------------------------------

_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70).map(float),
)
_leaves = st.one_of(st.none(), st.booleans(), _numbers, st.text(max_size=50))
_json = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=40,
)
_uint32 = st.integers(min_value=0, max_value=2**32 - 1)
_long_text = st.one_of(
    st.text(max_size=40), st.integers(1, 200_000).map(lambda n: "/" + "a" * n), st.just("/x\0y")
)


def _deep_struct(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"n": value}
    return value


@st.composite
def _pano_images(draw: st.DrawFn) -> pb.PanoImage:
    image = pb.PanoImage(
        type=draw(st.sampled_from([0, 1, 2, 3, 7])),  # type: ignore[arg-type]
        shape=draw(st.lists(_uint32, max_size=4)),
        bytes_per_pixel=draw(st.integers(-(2**31), 2**31 - 1)),
        file=draw(st.text(max_size=60)),
        frame_number=draw(_uint32),
        module_id=draw(_uint32),
    )
    size = draw(st.sampled_from([0, 255, 256, 257, 1024, 5000]))
    fill = draw(st.sampled_from([0, 255, 65535, 65536, 2**32 - 1]))
    image.image_array.extend([fill] * size)
    header = draw(st.dictionaries(st.text(max_size=10), _json, max_size=5))
    if draw(st.booleans()):
        header["deep"] = _deep_struct(draw(st.integers(1, 20)))
    image.header.update(header)
    return image


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (lengths here stay below 128 * 128)."""
    size = len(payload)
    length = bytes([size]) if size < 128 else bytes([size & 0x7F | 0x80, size >> 7])
    return bytes([tag << 3 | 2]) + length + payload


def _too_deep_upload(depth: int = 120) -> bytes:
    """An UploadImageRequest whose header nests Structs deeper than protobuf decodes (the
    client library refuses to build one, so it is written by hand)."""
    struct = b""
    for _ in range(depth):
        value = _field(5, struct)  # Value.struct_value
        struct = _field(1, _field(1, b"n") + _field(2, value))  # Struct.fields entry
    return _field(1, _field(2, struct))  # UploadImageRequest.pano_image.header


_garbage = st.one_of(
    st.binary(max_size=64),
    st.just(b"\xff" * 10),
    st.just(b"\x0a\x80"),
    st.just(_too_deep_upload()),
)


def _stream_requests() -> st.SearchStrategy[pb.StreamImagesRequest]:
    return st.builds(
        pb.StreamImagesRequest,
        stream_movie_data=st.booleans(),
        stream_pulse_height_data=st.booleans(),
        update_interval_seconds=_numbers,
        module_ids=st.lists(_uint32, max_size=20) | st.just(list(range(200_000))),
    )


def _init_requests() -> st.SearchStrategy[pb.InitHpIoRequest]:
    return st.builds(
        pb.InitHpIoRequest,
        data_dir=_long_text,
        update_interval_seconds=_numbers,
        force=st.just(False),
        simulate_daq=st.just(False),
        module_ids=st.lists(_uint32, max_size=20) | st.just([70_000] * 100_000),
    )


_calls = st.one_of(
    st.tuples(st.just("Ping"), _garbage),
    st.tuples(st.just("StreamImages"), _stream_requests().map(lambda r: r.SerializeToString())),
    st.tuples(st.just("StreamImages"), _garbage),
    st.tuples(st.just("InitHpIo"), _init_requests().map(lambda r: r.SerializeToString())),
    st.tuples(st.just("InitHpIo"), _garbage),
    st.tuples(
        st.just("UploadImages"),
        _pano_images().map(lambda i: pb.UploadImageRequest(pano_image=i).SerializeToString()),
    ),
    st.tuples(st.just("UploadImages"), _garbage),
)


def _call(channel: Any, method: str, data: bytes) -> None:
    """One raw call; a stream is read for its first response at most (an accepted stream with
    nothing to send ends at its deadline)."""
    path = f"/daqdata.DaqData/{method}"
    if method == "StreamImages":
        call = channel.unary_stream(path)(data, timeout=0.5)
        try:
            next(call)
        except grpc.RpcError as err:
            if err.code() is not grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
        except StopIteration:
            pass
        call.cancel()
    elif method == "UploadImages":
        channel.stream_unary(path)(iter([data]), timeout=5)
    else:
        channel.unary_unary(path)(data, timeout=1.0 if method == "Ping" else 5)


def _error_of(channel: grpc.Channel, method: str, data: bytes) -> grpc.RpcError | None:
    try:
        _call(channel, method, data)
    except grpc.RpcError as err:
        return err
    return None


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(call=_calls)
def test_every_rpc_answers_hostile_input_with_a_client_error(
    hostile: DaqData, call: tuple[str, bytes]
) -> None:
    method, data = call
    with grpc.insecure_channel(hostile.target) as channel:
        ping = channel.unary_unary(
            "/daqdata.DaqData/Ping",
            request_serializer=empty_pb2.Empty.SerializeToString,
            response_deserializer=empty_pb2.Empty.FromString,
        ).future(empty_pb2.Empty(), timeout=1.0)
        err = _error_of(channel, method, data)
        if err is not None:
            details = err.details() or ""
            assert err.code() in CLIENT_ERRORS, (method, err.code(), details)
            assert len(details.encode()) < 8 * 1024
            assert len(details) <= MESSAGE_CHARS + 100
        ping.result()
        # A Ping after the call too, within 1 s: the daemon is not stuck on what it was sent.
        _call(channel, "Ping", b"")


def test_the_hostile_walk_left_no_traceback_and_a_bounded_log(hostile: DaqData) -> None:
    """Runs after the walk (same module daemon): rejected requests are throttled, not logged
    each with a traceback; the final check happens again when the daemon stops."""
    log = hostile.log()
    assert "Traceback" not in log
    assert max(map(len, log.splitlines())) < 4 * MESSAGE_CHARS


def test_client_stream_skips_an_image_it_cannot_parse(hostile: DaqData) -> None:
    """A header whose time fields no clock can represent is one skipped image, not the end of
    the stream (the bundled client's parse)."""
    bad = upload_images(1, module=11)[0]
    bad.pano_image.header.update({"tv_sec": 1e300, "tv_usec": 0, "pkt_tai": 1, "pkt_nsec": 0})
    good = upload_images(1, module=12)[0]
    # Both are held before the stream opens: its first tick sends module 11, then 12.
    upload(hostile, [bad, good])
    with DaqDataClient(hosts=[hostile.target]) as client:
        stream = client.stream_images(None, False, True, 0, module_ids=[11, 12], timeout=60)
        image = next(stream)
        stream.close()
    assert image["module_id"] == 12
    assert image["header"]["pkt_num"] == 0
