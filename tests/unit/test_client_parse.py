"""PanoImage → parsed image dict (docs/clients.md), from the real ph256 recording."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from google.protobuf import struct_pb2

from panoseti_appliance import pff
from panoseti_appliance._proto import daq_data_pb2
from panoseti_appliance.daqdata.client.parse import parse_pano_image, parse_response
from panoseti_appliance.daqdata.sim.upload import pano_image
from panoseti_appliance.products import IMG8, IMG16, PH256, DataProduct
from panoseti_appliance.structs import struct_to_dict

PH_FILE = (
    Path(__file__).parents[1]
    / "data"
    / "start_2025-08-02T05_31_36Z.dp_ph256.bpp_2.module_254.seqno_0.pff"
)
SYNCED = {"pkt_num": 1, "pkt_tai": 529, "pkt_nsec": 779007488, "tv_sec": 1721882092}


def over_the_wire(image: daq_data_pb2.PanoImage) -> daq_data_pb2.StreamImagesResponse:
    """Serialise and parse back, as a client receives it."""
    data = daq_data_pb2.StreamImagesResponse(pano_image=image).SerializeToString()
    return daq_data_pb2.StreamImagesResponse.FromString(data)


@pytest.fixture(scope="module")
def ph_frames() -> list[pff.PffFrame]:
    return list(pff.iter_frames(PH_FILE))


def test_real_ph256_frames_parse_exactly(ph_frames: list[pff.PffFrame]) -> None:
    assert len(ph_frames) == 88
    minimum = 0
    for frame in ph_frames:
        image = pano_image(254, PH256, frame.header, frame.pixels, frame.index)
        parsed = parse_response(over_the_wire(image))
        pixels = parsed["image_array"]
        assert pixels.dtype == np.int16
        assert pixels.shape == (16, 16)
        assert np.array_equal(pixels, np.frombuffer(frame.pixels, "<i2").reshape(16, 16))
        minimum = min(minimum, int(pixels.min()))
        assert parsed["type"] == "PULSE_HEIGHT"
        assert parsed["shape"] == [16, 16]
        assert parsed["bytes_per_pixel"] == 2
        assert (parsed["module_id"], parsed["frame_number"]) == (254, frame.index)
        header = parsed["header"]
        for key, value in frame.header.items():
            assert header[key] == value
            assert type(header[key]) is int
        # The real recording is White-Rabbit-desynchronised in every frame (testdata README).
        assert header["wr_clock_desync"] is True
        assert header["wr_unix_timestamp"] == Decimal(0)
        tv_sec, tv_usec = frame.header["tv_sec"], frame.header["tv_usec"]
        assert header["pkt_unix_timestamp"] == Decimal(f"{tv_sec}.{tv_usec:06d}")
        assert header["pandas_unix_timestamp"] == pd.Timestamp(tv_sec * 10**9 + tv_usec * 1000)
    assert minimum == -575


def test_first_real_frame_values(ph_frames: list[pff.PffFrame]) -> None:
    frame = ph_frames[0]
    parsed = parse_response(over_the_wire(pano_image(254, PH256, frame.header, frame.pixels, 0)))
    header = parsed["header"]
    assert header["quabo_num"] == 3
    assert header["pkt_num"] == 5124
    assert header["pkt_unix_timestamp"] == Decimal("1754112728.985339")
    assert str(header["pandas_unix_timestamp"]) == "2025-08-02 05:32:08.985339"


def synced_image(dp: DataProduct, pixels: np.ndarray) -> daq_data_pb2.PanoImage:
    timing = {**SYNCED, "tv_usec": 779100}
    header: dict[str, Any] = (
        {"quabo_num": 0, **timing}
        if dp is PH256
        else {f"quabo_{q}": {**timing, "pkt_num": q} for q in range(4)}
    )
    raw = pixels.astype(dp.raw_dtype).tobytes()
    return pano_image(9, dp, header, raw, 5)


@pytest.mark.parametrize(
    ("dp", "dtype", "values"),
    [
        (PH256, np.int16, np.arange(-128, 128, dtype=np.int16).reshape(16, 16)),
        (IMG16, np.uint16, np.arange(64000, 65024, dtype=np.uint16).reshape(32, 32)),
        (IMG8, np.uint8, (np.arange(1024) % 256).astype(np.uint8).reshape(32, 32)),
    ],
)
def test_synced_header_gives_exact_wr_decimal(
    dp: DataProduct, dtype: type, values: np.ndarray
) -> None:
    parsed = parse_pano_image(over_the_wire(synced_image(dp, values)).pano_image)
    assert parsed["image_array"].dtype == dtype
    assert np.array_equal(parsed["image_array"], values)
    header = parsed["header"]
    # docs/pff.md's worked example: 1721882092.779007488 exactly, no float rounding.
    assert header["wr_unix_timestamp"] == Decimal("1721882092.779007488")
    assert header["wr_clock_desync"] is False
    assert header["pkt_unix_timestamp"] == Decimal("1721882092.7791")


def test_header_without_timing_fields_gives_none_timestamps() -> None:
    image = pano_image(1, PH256, {"quabo_num": 2}, bytes(512), 0)
    header = parse_pano_image(image)["header"]
    assert header["quabo_num"] == 2
    assert header["wr_unix_timestamp"] is None
    assert header["pkt_unix_timestamp"] is None
    assert header["pandas_unix_timestamp"] is None
    assert header["wr_clock_desync"] is False


def test_empty_response_parses_as_undefined() -> None:
    parsed = parse_response(daq_data_pb2.StreamImagesResponse())
    assert parsed["type"] == "UNDEFINED"
    assert parsed["image_array"].size == 0
    assert parsed["header"]["pkt_unix_timestamp"] is None


def test_struct_values_keep_their_kinds() -> None:
    struct = struct_pb2.Struct()
    struct.update({"n": 3, "x": 2.5, "s": "a", "b": True, "z": None, "l": [1, 1.5], "o": {"k": 7}})
    assert struct_to_dict(struct) == {
        "n": 3,
        "x": 2.5,
        "s": "a",
        "b": True,
        "z": None,
        "l": [1, 1.5],
        "o": {"k": 7},
    }
    assert type(struct_to_dict(struct)["n"]) is int
