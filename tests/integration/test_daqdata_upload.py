"""UploadImages through the real daemon (docs/daqdata.md): validation, delivery, several
uploads at once, and uploads not counting as readers."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import empty_pb2

from panoseti_appliance._proto import daq_data_pb2 as pb
from tests.integration.test_daqdata_support import (
    DaqData,
    daqdata,
    init_request,
    refused_upload,
    stream_request,
    upload_images,
)


def _request_queue() -> tuple[
    queue.Queue[pb.UploadImageRequest | None], Iterator[pb.UploadImageRequest]
]:
    """An upload request iterator fed from a queue (None ends it)."""
    q: queue.Queue[pb.UploadImageRequest | None] = queue.Queue()

    def requests() -> Iterator[pb.UploadImageRequest]:
        while (item := q.get()) is not None:
            yield item

    return q, requests()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaqData]:
    """One daemon for the tests that only upload (nothing else publishes there)."""
    with daqdata(tmp_path_factory.mktemp("shared")) as d:
        yield d


def _bad(change: str) -> pb.UploadImageRequest:
    request = upload_images(1)[0]
    image = request.pano_image
    if change == "unset":
        return pb.UploadImageRequest()
    if change == "undefined":
        image.type = pb.PanoImage.Type.UNDEFINED
    elif change == "shape":
        del image.shape[:]
        image.shape.extend([16, 32])
    elif change == "length":
        image.image_array.append(1)
    elif change == "value":
        image.image_array[5] = 65536
    elif change == "module":
        image.module_id = 65536
    return request


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("unset", "image 0: pano_image is not set"),
        ("undefined", "image 0: type is UNDEFINED"),
        ("shape", "image 0: Unknown data product for type=PULSE_HEIGHT, shape=[16, 32]"),
        ("length", "image 0: image_array has 257 values; ph256 (16x16) needs exactly 256"),
        ("value", "image 0: image_array[5] = 65536 does not fit bytes_per_pixel 2"),
        ("module", "image 0: module_id 65536 is above 65535"),
    ],
)
def test_invalid_upload_names_the_image_and_reason(
    shared: DaqData, change: str, reason: str
) -> None:
    assert refused_upload(shared, [_bad(change)]).startswith(reason)


def test_uploaded_image_streams_back_unchanged(shared: DaqData) -> None:
    with shared.stub() as stub:
        request = upload_images(1, module=300)[0]
        request.pano_image.image_array[0] = 65535  # a negative pulse height on the wire
        assert stub.UploadImages(iter([request]), timeout=10) == empty_pb2.Empty()
        response = next(stub.StreamImages(stream_request(), timeout=10))
        assert response.pano_image == request.pano_image


def test_several_uploads_at_once_are_not_readers(tmp_path: Path) -> None:
    with daqdata(tmp_path) as d, d.stub() as stub:
        feeds = [_request_queue() for _ in range(2)]
        futures = [stub.UploadImages.future(requests, timeout=60) for _, requests in feeds]
        call = stub.StreamImages(stream_request(), timeout=60)
        for module, (q, _) in zip((1, 2), feeds, strict=True):
            q.put(upload_images(1, module=module)[0])
            assert next(call).pano_image.module_id == module
        call.cancel()
        # Two uploads are open, no reader: a non-forced InitHpIo goes through.
        reply = stub.InitHpIo(init_request(data_dir=str(tmp_path / "data")), timeout=20)
        assert reply.success, reply.error_message
        # The uploads survived the re-init and still deliver.
        call = stub.StreamImages(stream_request(), timeout=60)
        feeds[1][0].put(upload_images(1, module=3)[0])
        assert next(call).pano_image.module_id == 3
        call.cancel()
        for q, _ in feeds:
            q.put(None)
        for future in futures:
            assert isinstance(future.result(timeout=30), empty_pb2.Empty)
