"""The daemon's own varint code: the byte-level checks UploadImages uses instead of converting an
image's values must agree with the plain rule (exactly `pixels` values, none above the pixel
width), and the packed pixels it writes must be the bytes protobuf writes, on any input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from panoseti_appliance._proto import daq_data_pb2 as pb
from panoseti_appliance.daqdata.pixels import packed_varints, wire_dtype
from panoseti_appliance.daqdata.server.upload import _packed_fit
from panoseti_appliance.daqdata.server.wire import field_bytes
from panoseti_appliance.products import DataProduct, by_name

IMG8, PH256 = by_name("img8"), by_name("ph256")


def _packed(values: list[int]) -> bytes:
    payload = pb.PanoImage(image_array=values).SerializeToString()
    found = field_bytes(payload, 3)
    assert found is not None
    return found


def _rule(values: list[int], dp: DataProduct) -> bool:
    return len(values) == dp.pixels and max(values) <= dp.max_wire_value


# Values around the limits of one, two and three varint bytes and of 8 and 16 bits.
EDGES = [0, 1, 127, 128, 255, 256, 16383, 16384, 65535, 65536, 2**21 - 1, 2**21, 2**32 - 1]
values = st.one_of(st.sampled_from(EDGES), st.integers(0, 2**32 - 1))


@pytest.mark.parametrize("dp", [IMG8, PH256], ids=lambda dp: dp.name)
@given(
    base=st.integers(0, 2**32 - 1),
    changes=st.lists(st.tuples(st.integers(0, 1023), values), max_size=4),
    extra=st.integers(-2, 2),
)
def test_the_byte_check_agrees_with_the_values(
    dp: DataProduct, base: int, changes: list[tuple[int, int]], extra: int
) -> None:
    fill = base % (dp.max_wire_value + 1)
    image = [fill] * max(1, dp.pixels + extra)
    for index, value in changes:
        image[index % len(image)] = value
    assert _packed_fit(_packed(image), dp) == _rule(image, dp)


@pytest.mark.parametrize("value", EDGES)
def test_each_edge_value_alone(value: int) -> None:
    image = [7] * PH256.pixels
    image[100] = value
    assert _packed_fit(_packed(image), PH256) == (value <= 65535)
    image8 = [7] * IMG8.pixels
    image8[0] = value
    assert _packed_fit(_packed(image8), IMG8) == (value <= 255)


def test_a_field_is_found_only_once_and_whole() -> None:
    one = pb.PanoImage(image_array=[1, 2, 300], module_id=4, file="x").SerializeToString()
    assert field_bytes(one, 3) == b"\x01\x02\xac\x02"
    assert field_bytes(one, 9) is None  # absent
    twice = one + pb.PanoImage(image_array=[5]).SerializeToString()
    assert field_bytes(twice, 3) is None  # protobuf would concatenate: left to it
    assert field_bytes(one[:-1], 3) is None  # cut short


IMG16 = by_name("img16")


@pytest.mark.parametrize("dp", [IMG8, IMG16, PH256], ids=lambda dp: dp.name)
@given(data=st.data())
def test_packed_pixels_are_the_bytes_protobuf_writes(dp: DataProduct, data: st.DataObject) -> None:
    edges = [v for v in EDGES if v <= dp.max_wire_value]
    value = st.one_of(st.sampled_from(edges), st.integers(0, dp.max_wire_value))
    image = data.draw(st.lists(value, min_size=dp.pixels, max_size=dp.pixels))
    pixels = np.array(image, dtype=wire_dtype(dp.bytes_per_pixel)).tobytes()
    assert packed_varints(dp, pixels) == _packed(image)


def test_a_value_written_longer_than_protobuf_writes_it_is_not_fit() -> None:
    canonical = _packed([7] * PH256.pixels)
    assert _packed_fit(canonical, PH256)
    # The first 7 in two bytes: the same value, not canonical.
    overlong = b"\x87\x00" + canonical[1:]
    assert not _packed_fit(overlong, PH256)
    assert _packed_fit(b"\x00" + canonical[1:], PH256)  # a plain 0 is canonical
