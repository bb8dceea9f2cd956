"""The upload view (daqdata/server/upload_view.py): whenever it decides on a request, the frames
are exactly those the decoded request gives (same wire form in every encoding, same pixels), and
whatever it cannot judge it leaves to the decoded request, which then accepts it or names what
is wrong. Requests are valid ones, batches, and bytes changed the ways a faulty or hostile
uploader changes them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st

from panoseti_appliance._proto import daq_data_pb2 as pb
from panoseti_appliance.daqdata.pixels import ENCODINGS, Encoding, compress
from panoseti_appliance.daqdata.server.frame import Frame
from panoseti_appliance.daqdata.server.upload import InvalidUpload, upload_frames, viewed_frames
from panoseti_appliance.daqdata.server.upload_view import PanoImageView, UploadImageRequestView
from panoseti_appliance.daqdata.server.wire import field_bytes, length_delimited, varint
from panoseti_appliance.products import by_name

HEADER_LIMIT = 65536
PRODUCTS = ["img16", "img8", "ph256", "ph1024"]


def image(dp_name: str, encoding: Encoding, module: int = 1, seed: int = 0) -> pb.PanoImage:
    dp = by_name(dp_name)
    rng = np.random.default_rng(seed)
    values = rng.integers(0, dp.max_wire_value + 1, dp.pixels)
    out = pb.PanoImage(
        type=dp.image_type.name,
        shape=[dp.rows, dp.cols],
        bytes_per_pixel=dp.bytes_per_pixel,
        file="run.pff",
        frame_number=seed,
        module_id=module,
    )
    out.header.update({"quabo_0": {"pkt_num": seed, "pkt_tai": 5}})
    raw = values.astype(f"<u{dp.bytes_per_pixel}").tobytes()
    if encoding == pb.PanoImage.PACKED:
        out.image_array.extend(values.tolist())
    else:
        out.pixel_encoding = encoding
        out.pixel_data = raw if encoding == pb.PanoImage.RAW else compress(dp, raw, encoding)
    return out


def request(*images: pb.PanoImage) -> bytes:
    first, *rest = images
    return pb.UploadImageRequest(pano_image=first, more_images=rest).SerializeToString()


def decoded(data: bytes) -> list[Frame] | str:
    """What the decoded request gives: the frames, or the reason they are refused."""
    try:
        return upload_frames(pb.UploadImageRequest.FromString(data), data, HEADER_LIMIT)
    except DecodeError:
        return "undecodable"
    except InvalidUpload as exc:
        return f"image {exc.position}: {exc}"


def same(viewed: list[Frame], full: list[Frame]) -> None:
    assert len(viewed) == len(full)
    for a, b in zip(viewed, full, strict=True):
        assert (a.module_id, a.dp, a.file, a.frame_number) == (
            b.module_id,
            b.dp,
            b.file,
            b.frame_number,
        )
        assert a.pixels == b.pixels
        for encoding in ENCODINGS:
            assert a.payload(encoding) == b.payload(encoding)


@pytest.mark.parametrize("dp_name", PRODUCTS)
@pytest.mark.parametrize("encoding", ENCODINGS, ids=lambda e: pb.PanoImage.Encoding.Name(e))
def test_a_valid_request_is_decided_by_the_view_with_the_same_frames(
    dp_name: str, encoding: Encoding
) -> None:
    data = request(*(image(dp_name, encoding, module=m, seed=m) for m in range(3)))
    viewed = viewed_frames(data, HEADER_LIMIT)
    assert viewed is not None
    full = decoded(data)
    assert not isinstance(full, str)
    same(viewed, full)


def test_the_view_keeps_the_packed_bytes_undecoded() -> None:
    data = request(image("img16", pb.PanoImage.PACKED))
    view = UploadImageRequestView.FromString(data)
    packed = view.pano_image.image_array
    assert isinstance(packed, bytes)
    assert packed == field_bytes(
        pb.UploadImageRequest.FromString(data).pano_image.SerializeToString(), 3
    )
    # The view's bytes are the real message's: a real PanoImage reads them back unchanged.
    assert PanoImageView.FromString(view.pano_image.SerializeToString()) == view.pano_image
    assert pb.UploadImageRequest.FromString(
        view.SerializeToString()
    ) == pb.UploadImageRequest.FromString(data)


UNKNOWN = b"\xf8\x01\x07"  # field 31, a varint: unknown to PanoImage
PANO_IMAGE_TAG = b"\x0a"  # UploadImageRequest.pano_image, length-delimited


def unpacked(img: pb.PanoImage) -> bytes:
    """image_array written one varint at a time: legal, but not what protobuf writes."""
    values = list(img.image_array)
    del img.image_array[:]
    return img.SerializeToString() + b"".join(b"\x18" + varint(v) for v in values)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (unpacked, "unpacked image_array"),
        (lambda img: img.SerializeToString() + UNKNOWN, "an unknown field"),
        (lambda img: UNKNOWN + img.SerializeToString(), "an unknown field first"),
        (lambda img: img.SerializeToString() + b"\x40\x01", "module_id given twice"),
        (lambda img: b"\x38\x00" + img.SerializeToString(), "frame_number 0 written out"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bytes_protobuf_would_write_differently_are_left_to_the_decoded_request(
    change: Callable[[pb.PanoImage], bytes], why: str
) -> None:
    data = length_delimited(PANO_IMAGE_TAG, change(image("img16", pb.PanoImage.PACKED)))
    assert not isinstance(decoded(data), str), "the decoded request accepts it"
    assert viewed_frames(data, HEADER_LIMIT) is None, why


def test_an_invalid_image_is_left_to_the_decoded_request_which_names_it() -> None:
    good = image("img16", pb.PanoImage.PACKED)
    bad = image("img16", pb.PanoImage.PACKED, seed=1)
    bad.image_array[7] = 70000
    data = request(good, bad)
    assert viewed_frames(data, HEADER_LIMIT) is None
    assert (
        decoded(data)
        == "image 1: image_array[7] = 70000 does not fit bytes_per_pixel 2 (maximum 65535)"
    )


@settings(max_examples=300, deadline=None)
@given(
    dp_name=st.sampled_from(PRODUCTS),
    encoding=st.sampled_from(ENCODINGS),
    count=st.integers(1, 3),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=3),
    cut=st.integers(0, 3),
)
def test_whenever_the_view_decides_it_agrees_with_the_decoded_request(
    dp_name: str, encoding: Encoding, count: int, edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(request(*(image(dp_name, encoding, seed=s) for s in range(count))))
    for at, byte in edits:
        data[at % len(data)] = byte
    data = data[: len(data) - cut]
    viewed = viewed_frames(bytes(data), HEADER_LIMIT)
    full = decoded(bytes(data))
    if viewed is not None:
        assert not isinstance(full, str), full
        same(viewed, full)
