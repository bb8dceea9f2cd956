"""The data-product table both ways: by name and by what a PanoImage carries (docs/pff.md)."""

from __future__ import annotations

import numpy as np
import pytest

from panoseti_appliance import products
from panoseti_appliance.products import (
    ALL,
    IMG8,
    IMG16,
    PH256,
    PH1024,
    ImageType,
    UnknownDataProduct,
    by_layout,
    by_name,
)

TABLE = [
    # name, type, rows, cols, bpp, bytes/image, user dtype
    ("img8", ImageType.MOVIE, 32, 32, 1, 1024, np.uint8),
    ("img16", ImageType.MOVIE, 32, 32, 2, 2048, np.uint16),
    ("ph256", ImageType.PULSE_HEIGHT, 16, 16, 2, 512, np.int16),
    ("ph1024", ImageType.PULSE_HEIGHT, 32, 32, 2, 2048, np.int16),
]


@pytest.mark.parametrize(("name", "itype", "rows", "cols", "bpp", "size", "dtype"), TABLE)
def test_table_matches_the_documented_products(
    name: str, itype: ImageType, rows: int, cols: int, bpp: int, size: int, dtype: type
) -> None:
    dp = by_name(name)
    assert (dp.name, dp.image_type, dp.shape, dp.bytes_per_pixel) == (
        name,
        itype,
        (rows, cols),
        bpp,
    )
    assert dp.bytes_per_image == size
    assert dp.dtype == np.dtype(dtype)
    assert dp.raw_dtype.itemsize == bpp
    # Little-endian raw bytes: the low byte comes first.
    assert np.frombuffer(b"\x01" + bytes(bpp - 1), dtype=dp.raw_dtype)[0] == 1
    assert dp.max_wire_value == 256**bpp - 1
    assert by_layout(itype, [rows, cols], bpp) is dp
    assert by_layout(int(itype), (rows, cols), bpp) is dp
    assert str(dp) == name


def test_groups_and_names() -> None:
    assert {dp.name for dp in products.MOVIE_PRODUCTS} == {"img8", "img16"}
    assert {dp.name for dp in products.PULSE_HEIGHT_PRODUCTS} == {"ph256", "ph1024"}
    assert products.NAMES == ("img16", "img8", "ph1024", "ph256")
    assert ALL == (IMG16, IMG8, PH256, PH1024)
    assert IMG8.is_movie
    assert not IMG8.is_pulse_height
    assert PH1024.is_pulse_height
    assert not PH1024.is_movie
    assert by_name(" ph256 ") is PH256


@pytest.mark.parametrize("name", ["img12", "PH256", "", "ph 256"])
def test_unknown_names(name: str) -> None:
    with pytest.raises(UnknownDataProduct) as info:
        by_name(name)
    message = str(info.value)
    assert message.startswith("Unknown data product")
    assert "expected one of img16, img8, ph1024, ph256" in message


@pytest.mark.parametrize(
    ("itype", "shape", "bpp"),
    [
        (ImageType.PULSE_HEIGHT, [16, 16], 1),
        (ImageType.MOVIE, [16, 16], 2),
        (ImageType.UNDEFINED, [32, 32], 2),
        (7, [32, 32], 2),
        (ImageType.MOVIE, [32, 32, 1], 2),
        (ImageType.PULSE_HEIGHT, [], 2),
    ],
)
def test_unknown_layouts(itype: int, shape: list[int], bpp: int) -> None:
    with pytest.raises(UnknownDataProduct) as info:
        by_layout(itype, shape, bpp)
    message = str(info.value)
    assert message.startswith("Unknown data product for type=")
    assert "ph256=(PULSE_HEIGHT, [16, 16], 2)" in message  # says what would be valid


def test_signed_pulse_heights_travel_as_unsigned() -> None:
    wire = np.array([-575, 0, 3343], dtype=PH256.dtype).astype("<u2")
    assert wire.tolist() == [64961, 0, 3343]
    assert wire.view(PH256.raw_dtype).tolist() == [-575, 0, 3343]
