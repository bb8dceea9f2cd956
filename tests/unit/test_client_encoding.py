"""The clients' pixel encodings (docs/clients.md, "Pixel encodings and every frame"): every
encoding decodes to the PFF's own pixels, broken images are refused with a reason, uploads
re-encode, and the automatic choice and request options follow the documented rules."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import blosc2
import numpy as np
import pytest

from panoseti_appliance import pff
from panoseti_appliance._proto import daq_data_pb2 as pb
from panoseti_appliance.daqdata.client.encoding import encode_image, is_local, stream_encoding
from panoseti_appliance.daqdata.client.parse import image_array, parse_response
from panoseti_appliance.daqdata.client.rpc import batch_request, stream_request, upload_image
from panoseti_appliance.daqdata.pixels import BLOSC_LZ4, BLOSC_ZSTD, PACKED, RAW, Encoding
from panoseti_appliance.daqdata.sim.upload import pano_image
from panoseti_appliance.products import IMG8, IMG16, PH256, PH1024, DataProduct

PH_FILE = (
    Path(__file__).parents[1]
    / "data"
    / "start_2025-08-02T05_31_36Z.dp_ph256.bpp_2.module_254.seqno_0.pff"
)
CODECS = {BLOSC_LZ4: blosc2.Codec.LZ4, BLOSC_ZSTD: blosc2.Codec.ZSTD}
ENCODINGS = (PACKED, RAW, BLOSC_LZ4, BLOSC_ZSTD)


def over_the_wire(image: pb.PanoImage) -> pb.PanoImage:
    """Serialise a response and parse it back, as a client receives it."""
    data = pb.StreamImagesResponse(pano_image=image).SerializeToString()
    return pb.StreamImagesResponse.FromString(data).pano_image


def as_sent(dp: DataProduct, raw: bytes, encoding: Encoding, frame_number: int = 0) -> pb.PanoImage:
    """The image a server sends for `raw` in `encoding`, made as the wire contract says
    (the blosc2 chunk made here, not by the code under test)."""
    image = pano_image(3, dp, {"quabo_num": 0}, raw, frame_number)
    if encoding == PACKED:
        return image
    del image.image_array[:]
    image.pixel_encoding = encoding
    if encoding == RAW:
        image.pixel_data = raw
    else:
        image.pixel_data = blosc2.compress2(
            raw,
            typesize=dp.bytes_per_pixel,
            filters=[blosc2.Filter.BITSHUFFLE],
            codec=CODECS[encoding],
        )
    return image


def generated(dp: DataProduct) -> bytes:
    """Pixels over the product's whole range (negative pulse heights included)."""
    info = np.iinfo(dp.raw_dtype)
    values = np.linspace(info.min, info.max, dp.pixels).astype(dp.raw_dtype)
    return values.tobytes()


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_real_ph256_frames_decode_to_the_pff_pixels(encoding: Encoding) -> None:
    frames = list(pff.iter_frames(PH_FILE))
    for frame in frames:
        pixels = image_array(over_the_wire(as_sent(PH256, frame.pixels, encoding, frame.index)))
        assert pixels.dtype == np.int16
        assert pixels.shape == (16, 16)
        assert np.array_equal(pixels, np.frombuffer(frame.pixels, "<i2").reshape(16, 16))
    assert min(int(np.frombuffer(f.pixels, "<i2").min()) for f in frames) < 0


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("dp", [IMG8, IMG16, PH256, PH1024], ids=lambda dp: dp.name)
def test_every_product_decodes_alike_in_every_encoding(dp: DataProduct, encoding: Encoding) -> None:
    raw = generated(dp)
    pixels = image_array(over_the_wire(as_sent(dp, raw, encoding)))
    assert pixels.dtype == dp.dtype
    assert pixels.shape == dp.shape
    assert np.array_equal(pixels, np.frombuffer(raw, dp.raw_dtype).reshape(dp.shape))


def test_raw_pixels_are_a_read_only_view_of_the_message_bytes() -> None:
    pixels = image_array(over_the_wire(as_sent(IMG16, generated(IMG16), RAW)))
    assert not pixels.flags.owndata
    assert not pixels.flags.writeable


@pytest.mark.parametrize(
    ("encoding", "change", "reason"),
    [
        (RAW, lambda image: image.pixel_data[:-1], "RAW pixel_data has 511 bytes"),
        (RAW, lambda image: image.pixel_data + b"\0\0", "RAW pixel_data has 514 bytes"),
        (BLOSC_LZ4, lambda image: blosc2.compress2(bytes(510)), "chunk of 510 bytes; 512 are"),
        (BLOSC_ZSTD, lambda image: b"not a blosc2 chunk at all", "is not a blosc2 chunk"),
        (BLOSC_ZSTD, lambda image: image.pixel_data[:-5], "is not a blosc2 chunk .its header"),
        (BLOSC_LZ4, lambda image: b"short", "is not a blosc2 chunk .*less than 16 bytes"),
    ],
    ids=["raw-short", "raw-long", "chunk-size", "chunk-garbage", "chunk-cut", "chunk-short"],
)
def test_pixel_data_that_does_not_fit_the_shape_is_refused(
    encoding: Encoding, change: Callable[[pb.PanoImage], bytes], reason: str
) -> None:
    image = as_sent(PH256, generated(PH256), encoding)
    image.pixel_data = change(image)
    with pytest.raises(ValueError, match=reason):
        image_array(over_the_wire(image))


def test_unknown_encoding_is_refused() -> None:
    image = as_sent(PH256, generated(PH256), RAW)
    image.pixel_encoding = 7  # type: ignore[assignment]
    with pytest.raises(ValueError, match="unknown pixel_encoding 7"):
        image_array(over_the_wire(image))


@pytest.mark.parametrize("dp", [IMG8, IMG16, PH256], ids=lambda dp: dp.name)
def test_uploads_reencode_through_every_encoding_and_back(dp: DataProduct) -> None:
    packed = as_sent(dp, generated(dp), PACKED)
    image = packed
    for encoding in (RAW, BLOSC_LZ4, BLOSC_ZSTD, RAW, PACKED):
        image = encode_image(image, encoding)
        assert image.pixel_encoding == encoding
        assert np.array_equal(image_array(over_the_wire(image)), image_array(packed))
    assert image == packed
    raw = encode_image(packed, RAW)
    assert raw.pixel_data == generated(dp)
    assert not raw.image_array
    assert encode_image(raw, RAW) is raw


def test_upload_encoding_refuses_values_wider_than_the_pixels() -> None:
    image = as_sent(IMG8, generated(IMG8), PACKED)
    image.image_array[3] = 256
    with pytest.raises(ValueError, match="does not fit 1 bytes per pixel"):
        encode_image(image, RAW)
    image.image_array.append(1)
    with pytest.raises(ValueError, match="image_array has 1025 values; shape"):
        upload_image(image, RAW)
    with pytest.raises(ValueError, match="needs PanoImage or UploadImageRequest"):
        upload_image(pb.StreamImagesResponse(), RAW)


@pytest.mark.parametrize(
    ("target", "local"),
    [
        ("unix:///run/panoseti/daqdata.sock", True),
        ("unix:relative.sock", True),
        ("127.0.0.1:50051", True),
        ("127.8.9.10:6000", True),
        ("[::1]:50051", True),
        ("localhost:50051", True),
        ("LocalHost:1", True),
        ("10.0.0.2:50051", False),
        ("[2001:db8::1]:50051", False),
        ("node1:50051", False),
        ("128.114.23.81:50051", False),
    ],
)
def test_local_targets(target: str, local: bool) -> None:
    assert is_local(target) is local
    assert stream_encoding(target, None, None) == (RAW if local else PACKED)
    assert stream_encoding(target, "auto", None) == (RAW if local else PACKED)


def test_explicit_encoding_and_compression() -> None:
    remote, local = "10.0.0.2:50051", "unix:///x.sock"
    assert stream_encoding(local, "packed", None) == PACKED
    assert stream_encoding(remote, "raw", None) == RAW
    assert stream_encoding(remote, "zstd", None) == BLOSC_ZSTD
    for encoding in (None, "auto", "raw", "lz4"):
        assert stream_encoding(local, encoding, "lz4") == BLOSC_LZ4
    assert stream_encoding(remote, None, "zstd") == BLOSC_ZSTD
    with pytest.raises(ValueError, match="cannot be combined with encoding='packed'"):
        stream_encoding(remote, "packed", "lz4")
    with pytest.raises(ValueError, match="cannot be combined with encoding='zstd'"):
        stream_encoding(remote, "zstd", "lz4")
    with pytest.raises(ValueError, match="encoding must be one of packed, raw, lz4, zstd"):
        stream_encoding(remote, "gzip", None)
    with pytest.raises(ValueError, match="compression must be one of lz4, zstd"):
        stream_encoding(remote, None, "gzip")


def test_stream_request_options() -> None:
    plain = stream_request(True, False, 0.5, [1])
    assert (plain.pixel_encoding, plain.every_frame, plain.max_frames_per_response) == (
        PACKED,
        False,
        0,
    )
    request = stream_request(
        True, True, 1, (), pixel_encoding=RAW, every_frame=True, max_frames_per_response=64
    )
    assert (request.pixel_encoding, request.every_frame, request.max_frames_per_response) == (
        RAW,
        True,
        64,
    )
    with pytest.raises(ValueError, match="needs every_frame=True"):
        stream_request(True, True, 0, max_frames_per_response=2)
    for bad in (0, -1, 2**32, 1.5, True):
        with pytest.raises(ValueError, match="max_frames_per_response must be an integer"):
            stream_request(True, True, 0, every_frame=True, max_frames_per_response=bad)  # type: ignore[arg-type]


def test_responses_carry_frames_lost_on_their_first_image() -> None:
    images = [as_sent(PH256, generated(PH256), RAW, n) for n in range(3)]
    response = pb.StreamImagesResponse(pano_image=images[0], more_images=images[1:], frames_lost=5)
    parsed = parse_response(pb.StreamImagesResponse.FromString(response.SerializeToString()))
    assert (parsed["frame_number"], parsed["frames_lost"]) == (0, 5)
    assert parse_response(pb.StreamImagesResponse(pano_image=images[1]))["frames_lost"] == 0
    request = batch_request(images)
    assert [request.pano_image, *request.more_images] == images
