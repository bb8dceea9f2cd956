"""Writing PFF frames byte for byte as the DAQ's producers do (docs/pff.md, "Fixed-width headers").

The simulator and the test producers must write what real recordings contain, including the
producers' fixed-width header spacing, so that every reader here (the frame parser, the file
tail, the Hashpipe socket framer) is exercised on the bytes it will meet on a DAQ node.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from panoseti_appliance.pff.errors import PffError
from panoseti_appliance.pff.layout import HEADER_END, QUABO_KEYS, TIME_FIELDS
from panoseti_appliance.products import DataProduct

#: Which producer's spacing a 4-quabo header gets: the file writer's or the socket producer's.
HeaderLayout = Literal["file", "socket"]


def _ph256_line(f: Mapping[str, Any]) -> str:
    return (
        f'{{ "quabo_num": {int(f["quabo_num"]):>1d}, "pkt_num": {int(f["pkt_num"]):>10d}, '
        f'"pkt_tai": {int(f["pkt_tai"]):>4d}, "pkt_nsec": {int(f["pkt_nsec"]):>9d}, '
        f'"tv_sec": {int(f["tv_sec"]):>10d}, "tv_usec": {int(f["tv_usec"]):>6d}}}'
    )


def _quabo_record(f: Mapping[str, Any]) -> str:
    return (
        f'{{ "pkt_num": {int(f["pkt_num"]):>10d}, "pkt_tai": {int(f["pkt_tai"]):>4d}, '
        f'"pkt_nsec": {int(f["pkt_nsec"]):>9d}, "tv_sec": {int(f["tv_sec"]):>10d}, '
        f'"tv_usec": {int(f["tv_usec"]):>6d}}}'
    )


def format_header(
    dp: DataProduct, fields: Mapping[str, Any], layout: HeaderLayout = "file"
) -> bytes:
    """The producer's fixed-width JSON header (docs/pff.md, "Fixed-width headers").

    For ph256, `fields` is flat (quabo_num, pkt_num, pkt_tai, pkt_nsec, tv_sec, tv_usec); for the
    4-quabo products it maps quabo_0..quabo_3 to dicts of the same fields (without quabo_num).
    `layout` picks the file writer's or the socket producer's spacing.
    """
    try:
        if dp.name == "ph256":
            return _ph256_line(fields).encode()
        records = [f'"{key}": {_quabo_record(fields[key])}' for key in QUABO_KEYS]
    except KeyError as exc:
        raise PffError(f"cannot format a {dp.name} header: missing field {exc}") from None
    if layout == "file":
        body = ", \n".join(f"   {r}" for r in records)
    else:
        body = ",\n".join(f" {r}" for r in records)
    return f"{{\n{body}\n}}".encode()


def _has_fixed_fields(dp: DataProduct, header: Mapping[str, Any]) -> bool:
    if dp.name == "ph256":
        return set(header) == {"quabo_num", *TIME_FIELDS}
    return set(header) == set(QUABO_KEYS) and all(
        isinstance(header[k], Mapping) and set(header[k]) == set(TIME_FIELDS) for k in QUABO_KEYS
    )


def encode_frame(
    header: Mapping[str, Any] | bytes,
    pixels: bytes | np.ndarray,
    dp: DataProduct,
    layout: HeaderLayout = "file",
) -> bytes:
    """One frame's bytes: header (dict formatted with format_header, or raw JSON bytes) + b"\\n\\n*" + pixels.

    An ndarray is converted to the product's little-endian raw dtype; its size must match the product.
    A dict with exactly the producer's fields is written in its fixed-width layout; any other dict
    is written as compact JSON.
    """
    if isinstance(header, (bytes, bytearray)):
        head = bytes(header)
        if not head.startswith(b"{") or b"\n\n" in head:
            raise PffError("raw header must start with '{' and contain no blank line")
    elif _has_fixed_fields(dp, header):
        head = format_header(dp, header, layout)
    else:
        head = json.dumps(dict(header), separators=(", ", ": ")).encode()
    if isinstance(pixels, np.ndarray):
        if pixels.size != dp.pixels:
            raise PffError(
                f"{dp.name} image needs {dp.pixels} pixels ({dp.rows}x{dp.cols}), got {pixels.size}"
            )
        raw = np.ascontiguousarray(pixels.reshape(-1).astype(dp.raw_dtype)).tobytes()
    else:
        raw = bytes(pixels)
    if len(raw) != dp.bytes_per_image:
        raise PffError(f"{dp.name} image needs {dp.bytes_per_image} pixel bytes, got {len(raw)}")
    return head + HEADER_END + raw
