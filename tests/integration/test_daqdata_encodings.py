"""Pixel encodings, batched uploads and every-frame streams through the real daemon, on the wire
(docs/daqdata.md, "Pixel encodings" and "Every frame"): what a client that asks for them gets,
and that a client asking for nothing new sees the original messages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blosc2
import grpc
import numpy as np
import pytest
from google.protobuf import empty_pb2

from panoseti_appliance._proto import daq_data_pb2 as pb
from tests.daemons import rpc_details
from tests.integration.test_daqdata_support import (
    DaqData,
    daqdata,
    refused_upload,
    rpc_error,
    stream_request,
    until,
    upload_images,
)

Encoding = pb.PanoImage.Encoding
Enc = pb.PanoImage.Encoding  # the type of an encoding value, for annotations
CODECS = {Encoding.BLOSC_LZ4: blosc2.Codec.LZ4, Encoding.BLOSC_ZSTD: blosc2.Codec.ZSTD}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaqData]:
    with daqdata(tmp_path_factory.mktemp("encodings")) as d:
        yield d


def _raw(image: pb.PanoImage) -> bytes:
    """The PFF bytes of a PACKED image's pixels (unsigned 16-bit little-endian here)."""
    return np.array(image.image_array, dtype="<u2").tobytes()


def _with_pixels(image: pb.PanoImage, encoding: Enc) -> pb.PanoImage:
    """`image` with its pixels moved from image_array into pixel_data in `encoding`."""
    raw = _raw(image)
    out = pb.PanoImage()
    out.CopyFrom(image)
    del out.image_array[:]
    out.pixel_encoding = encoding
    if encoding == Encoding.RAW:
        out.pixel_data = raw
    else:
        out.pixel_data = blosc2.compress2(
            raw, typesize=2, filters=[blosc2.Filter.BITSHUFFLE], codec=CODECS[encoding]
        )
    return out


def _metadata(image: pb.PanoImage) -> pb.PanoImage:
    bare = pb.PanoImage()
    bare.CopyFrom(image)
    for name in ("image_array", "pixel_data", "pixel_encoding"):
        bare.ClearField(name)
    return bare


def _newest(d: DaqData, encoding: Enc, module: int) -> pb.PanoImage:
    request = stream_request(pixel_encoding=encoding, module_ids=[module])
    with d.stub() as stub:
        call = stub.StreamImages(request, timeout=10)
        response = next(call)
        call.cancel()
    return response.pano_image


@pytest.mark.parametrize("encoding", list(Encoding.values())[1:], ids=Encoding.Name)
def test_a_packed_upload_streams_in_every_encoding(shared: DaqData, encoding: Enc) -> None:
    request = upload_images(1, module=11)[0]
    request.pano_image.image_array[3] = 65535  # a negative pulse height
    with shared.stub() as stub:
        stub.UploadImages(iter([request]), timeout=10)
    got = _newest(shared, encoding, 11)
    assert got.pixel_encoding == encoding
    assert len(got.image_array) == 0
    raw = got.pixel_data if encoding == Encoding.RAW else blosc2.decompress2(got.pixel_data)
    assert raw == _raw(request.pano_image)
    assert np.frombuffer(raw, dtype="<i2")[3] == -1
    assert _metadata(got) == _metadata(request.pano_image)


@pytest.mark.parametrize("encoding", list(Encoding.values())[1:], ids=Encoding.Name)
def test_an_upload_in_any_encoding_reaches_an_original_client_packed(
    shared: DaqData, encoding: Enc
) -> None:
    packed = upload_images(1, module=12)[0].pano_image
    sent = _with_pixels(packed, encoding)
    with shared.stub() as stub:
        stub.UploadImages(iter([pb.UploadImageRequest(pano_image=sent)]), timeout=10)
    assert _newest(shared, Encoding.PACKED, 12) == packed
    assert _newest(shared, encoding, 12) == sent  # forwarded in the bytes it came in


def _bad_pixels(change: str) -> pb.UploadImageRequest:
    image = upload_images(1)[0].pano_image
    if change == "raw length":
        image = _with_pixels(image, Encoding.RAW)
        image.pixel_data = image.pixel_data[:-2]
    elif change == "not blosc":
        image = _with_pixels(image, Encoding.BLOSC_LZ4)
        image.pixel_data = b"\x00" * 40
    elif change == "blosc size":
        image = _with_pixels(image, Encoding.BLOSC_ZSTD)
        image.pixel_data = blosc2.compress2(b"\x01" * 100, typesize=2)
    elif change == "unknown":
        image.pixel_encoding = 9  # type: ignore[assignment]
    elif change == "both":
        image.pixel_data = b"\x00\x01"
    elif change == "array with raw":
        image.pixel_encoding = Encoding.RAW
    return pb.UploadImageRequest(pano_image=image)


#: What each change of `_bad_pixels` is refused with (the start of the details).
REFUSALS = {
    "raw length": "image 0: pixel_data holds 510 bytes of pixels; ph256 (16x16, 2 bytes ",
    "not blosc": "image 0: pixel_data is not a blosc2 chunk",
    "blosc size": "image 0: pixel_data is a blosc2 chunk of 100 bytes",
    "unknown": "image 0: pixel_encoding 9 is unknown; use PACKED, RAW, BLOSC_LZ4 or",
    "both": "image 0: pixel_data has 2 bytes but pixel_encoding is PACKED",
    "array with raw": "image 0: image_array has 256 values but pixel_encoding is RAW",
}


@pytest.mark.parametrize("change", REFUSALS)
def test_invalid_pixels_are_refused_naming_the_field(shared: DaqData, change: str) -> None:
    assert refused_upload(shared, [_bad_pixels(change)]).startswith(REFUSALS[change])


def test_an_unknown_stream_encoding_is_refused(shared: DaqData) -> None:
    with shared.stub() as stub:
        call = stub.StreamImages(stream_request(pixel_encoding=5), timeout=10)
        err = rpc_error(lambda: next(call))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert rpc_details(err) == (
        "pixel_encoding 5 is unknown; ask for PACKED, RAW, BLOSC_LZ4 or BLOSC_ZSTD."
    )


def _batch(images: list[pb.UploadImageRequest]) -> pb.UploadImageRequest:
    first, *rest = (r.pano_image for r in images)
    return pb.UploadImageRequest(pano_image=first, more_images=rest)


def _every_frame(stub: Any, module: int, per_response: int = 1) -> Any:
    request = stream_request(
        every_frame=True, module_ids=[module], max_frames_per_response=per_response
    )
    return stub.StreamImages(request, timeout=60)


def _frames(response: pb.StreamImagesResponse) -> list[pb.PanoImage]:
    return [response.pano_image, *response.more_images]


def _wait_subscribed(d: DaqData, streams: int) -> None:
    """Until the daemon has logged `streams` streams joining (frames published before a stream
    joined are not its to get)."""
    until(lambda: d.daemon.log().count(" joined: ") >= streams, what="the stream to join")


def test_every_frame_delivers_each_uploaded_frame_in_order_batched(tmp_path: Path) -> None:
    with daqdata(tmp_path) as d, d.stub() as stub:
        call = _every_frame(stub, module=21, per_response=8)
        _wait_subscribed(d, 1)
        images = upload_images(50, module=21)
        # A batched upload and single ones, one stream.
        stub.UploadImages(iter([_batch(images[:20]), *images[20:]]), timeout=30)
        got: list[pb.PanoImage] = []
        while len(got) < 50:
            response = next(call)
            assert response.frames_lost == 0
            assert 1 <= len(_frames(response)) <= 8
            got.extend(_frames(response))
        call.cancel()
    assert got == [r.pano_image for r in images]


def test_a_bad_image_in_a_batch_is_named_by_its_place_in_the_stream(shared: DaqData) -> None:
    images = upload_images(6, module=22)
    images[4].pano_image.module_id = 70000
    details = refused_upload(shared, [images[0], _batch(images[1:])])
    assert details == "image 4: module_id 70000 is above 65535"


def test_a_client_that_falls_behind_loses_the_oldest_frames_and_is_told(tmp_path: Path) -> None:
    settings = {"daqdata": {"every_frame_queue_frames": 4}}
    with daqdata(tmp_path, settings) as d, d.stub() as stub:
        call = _every_frame(stub, module=23)
        _wait_subscribed(d, 1)
        # The client reads nothing while 3 000 frames are uploaded: far more than its queue
        # and gRPC's buffers hold. The upload must still go through at once.
        images = upload_images(3000, module=23)
        batches = [_batch(images[i : i + 100]) for i in range(0, 3000, 100)]
        reply = stub.UploadImages(iter(batches), timeout=30)
        assert reply == empty_pb2.Empty()
        numbers: list[int] = []
        lost = 0
        while not numbers or numbers[-1] != 2999:
            response = next(call)
            lost += response.frames_lost
            numbers.extend(image.frame_number for image in _frames(response))
        call.cancel()
    assert lost > 0
    assert len(numbers) + lost == 3000
    assert numbers == sorted(set(numbers))  # in order, none twice


def test_frames_per_response_is_capped_whatever_the_client_asks(tmp_path: Path) -> None:
    with daqdata(tmp_path) as d, d.stub() as stub:
        call = _every_frame(stub, module=24, per_response=2**32 - 1)
        _wait_subscribed(d, 1)
        images = upload_images(600, module=24)
        stub.UploadImages(iter([_batch(images)]), timeout=30)
        got: list[pb.PanoImage] = []
        sizes: list[int] = []
        while len(got) < 600:
            frames = _frames(next(call))
            sizes.append(len(frames))
            got.extend(frames)
        call.cancel()
    # The 600 arrive in one request, so they are all queued before the first response.
    assert max(sizes) == 256  # MAX_FRAMES_PER_RESPONSE, as docs/daqdata.md says
    assert got == [r.pano_image for r in images]
