"""The four PANOSETI data products and their fixed properties (docs/pff.md, "Data products").

Every module that needs a shape, a pixel width or a dtype asks this table, so the facts live in
one place: the format does not describe itself, and a wrong guess silently corrupts images.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class ImageType(enum.IntEnum):
    """PanoImage.Type on the wire (daq_data.proto)."""

    UNDEFINED = 0
    PULSE_HEIGHT = 1
    MOVIE = 2


@dataclass(frozen=True)
class DataProduct:
    """One data product: `name` is what file names, sockets and configs call it."""

    name: str
    image_type: ImageType
    rows: int
    cols: int
    bytes_per_pixel: int
    # The dtype users see. Pulse-height pixels can be negative, so they are signed even though
    # the wire carries them as unsigned 16-bit values.
    dtype: np.dtype
    # The little-endian dtype the raw pixel bytes are stored in (files, sockets).
    raw_dtype: np.dtype

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    @property
    def pixels(self) -> int:
        return self.rows * self.cols

    @property
    def bytes_per_image(self) -> int:
        return self.pixels * self.bytes_per_pixel

    @property
    def is_movie(self) -> bool:
        return self.image_type is ImageType.MOVIE

    @property
    def is_pulse_height(self) -> bool:
        return self.image_type is ImageType.PULSE_HEIGHT

    @property
    def max_wire_value(self) -> int:
        """Largest value an `image_array` entry may hold for this product."""
        return (1 << 8 * self.bytes_per_pixel) - 1

    def __str__(self) -> str:
        return self.name


IMG8 = DataProduct("img8", ImageType.MOVIE, 32, 32, 1, np.dtype("uint8"), np.dtype("u1"))
IMG16 = DataProduct("img16", ImageType.MOVIE, 32, 32, 2, np.dtype("uint16"), np.dtype("<u2"))
PH256 = DataProduct("ph256", ImageType.PULSE_HEIGHT, 16, 16, 2, np.dtype("int16"), np.dtype("<i2"))
PH1024 = DataProduct(
    "ph1024", ImageType.PULSE_HEIGHT, 32, 32, 2, np.dtype("int16"), np.dtype("<i2")
)

#: All products, in the order a stream delivers them in one tick (docs/daqdata.md, "StreamImages").
ALL: tuple[DataProduct, ...] = (IMG16, IMG8, PH256, PH1024)
BY_NAME: dict[str, DataProduct] = {dp.name: dp for dp in ALL}
NAMES: tuple[str, ...] = tuple(sorted(BY_NAME))
MOVIE_PRODUCTS: tuple[DataProduct, ...] = tuple(dp for dp in ALL if dp.is_movie)
PULSE_HEIGHT_PRODUCTS: tuple[DataProduct, ...] = tuple(dp for dp in ALL if dp.is_pulse_height)
_BY_LAYOUT: dict[tuple[ImageType, int, int, int], DataProduct] = {
    (dp.image_type, dp.rows, dp.cols, dp.bytes_per_pixel): dp for dp in ALL
}


class UnknownDataProduct(ValueError):
    """Raised for a name or (type, shape, bpp) that is not one of the four products."""


def by_name(name: str) -> DataProduct:
    """Look a product up by its name (`img16`, `ph256`, ...)."""
    try:
        return BY_NAME[name.strip()]
    except KeyError:
        raise UnknownDataProduct(
            f"Unknown data product {name!r}: expected one of {', '.join(NAMES)}"
        ) from None


def by_layout(
    image_type: int | ImageType, shape: Sequence[int], bytes_per_pixel: int
) -> DataProduct:
    """Look a product up by what a PanoImage carries: type, [rows, cols] and bytes per pixel."""
    if len(shape) == 2:
        # Values from the wire are ints already, and an IntEnum key matches its int: the lookup
        # then needs no conversion (an upload looks up every image).
        dp = _BY_LAYOUT.get((image_type, shape[0], shape[1], bytes_per_pixel))  # type: ignore[arg-type]
        if dp is not None:
            return dp
    dims = tuple(int(v) for v in shape)
    try:
        itype = ImageType(int(image_type))
    except ValueError:
        itype = ImageType.UNDEFINED
    if len(dims) == 2:
        dp = _BY_LAYOUT.get((itype, dims[0], dims[1], int(bytes_per_pixel)))
        if dp is not None:
            return dp
    raise UnknownDataProduct(
        f"Unknown data product for type={itype.name}, shape={list(dims)}, "
        f"bytes_per_pixel={bytes_per_pixel}: valid are "
        + "; ".join(
            f"{dp.name}=({dp.image_type.name}, [{dp.rows}, {dp.cols}], {dp.bytes_per_pixel})"
            for dp in ALL
        )
    )
