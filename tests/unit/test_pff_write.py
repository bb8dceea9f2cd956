"""Writing frames byte-identical to the producer (docs/pff.md) and reading them back."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panoseti_appliance import pff
from panoseti_appliance.products import ALL, IMG8, IMG16, PH256, PH1024, DataProduct

REAL = (
    Path(__file__).parents[1]
    / "data"
    / "start_2025-08-02T05_31_36Z.dp_ph256.bpp_2.module_254.seqno_0.pff"
)

# Each field at the widest value its printf width allows, and at zero.
WIDEST = {"pkt_num": 4294967295, "pkt_tai": 1023, "pkt_nsec": 999999999, "tv_sec": 9999999999}
WIDEST["tv_usec"] = 999999


def quabo(**over: int) -> dict[str, int]:
    base = {"pkt_num": 12, "pkt_tai": 229, "pkt_nsec": 62221343, "tv_sec": 1754112728}
    return {**base, "tv_usec": 5, **over}


def quad_header(**over: int) -> dict[str, Any]:
    return {key: quabo(**{"pkt_num": i, **over}) for i, key in enumerate(pff.QUABO_KEYS)}


def test_every_real_header_re_encodes_byte_identically() -> None:
    raw = REAL.read_bytes()
    frames = list(pff.iter_frames(REAL))
    assert pff.format_header(PH256, frames[0].header) == frames[0].header_json
    rebuilt = b"".join(pff.encode_frame(f.header, f.image(), PH256) for f in frames)
    assert rebuilt == raw


def test_file_writer_layout_of_a_module_image() -> None:
    text = pff.format_header(IMG16, quad_header()).decode()
    lines = text.split("\n")
    assert lines[0] == "{"
    assert lines[-1] == "}"
    assert lines[1] == (
        '   "quabo_0": { "pkt_num":          0, "pkt_tai":  229, "pkt_nsec":  62221343, '
        '"tv_sec": 1754112728, "tv_usec":      5}, '
    )
    assert lines[4].startswith('   "quabo_3": {')
    assert lines[4].endswith("}")
    assert len(text) == 489
    assert json.loads(text) == quad_header()


def test_socket_producer_layout_of_a_module_image() -> None:
    text = pff.format_header(PH1024, quad_header(), layout="socket").decode()
    lines = text.split("\n")
    assert lines[1].startswith(' "quabo_0": { "pkt_num":          0,')
    assert lines[1].endswith("},")
    assert lines[4].endswith("}")
    assert not lines[4].endswith(",")
    assert len(text) == 478
    assert json.loads(text) == quad_header()


@pytest.mark.parametrize(
    ("dp", "layout", "size"),
    [
        (IMG16, "file", 2540),
        (PH1024, "file", 2540),
        (IMG8, "file", 1516),
        (IMG16, "socket", 478 + 3 + 2048),
        (PH256, "file", 636),
        (PH256, "socket", 636),
    ],
)
def test_frame_sizes_are_constant(dp: DataProduct, layout: pff.HeaderLayout, size: int) -> None:
    header: dict[str, Any]
    if dp is PH256:
        small, wide = {"quabo_num": 0, **quabo()}, {"quabo_num": 3, **WIDEST}
        zero = {"quabo_num": 0, **dict.fromkeys(WIDEST, 0)}
        headers = [small, wide, zero]
    else:
        headers = [quad_header(), quad_header(**WIDEST), quad_header(**dict.fromkeys(WIDEST, 0))]
    for header in headers:
        frame = pff.encode_frame(header, bytes(dp.bytes_per_image), dp, layout)
        assert len(frame) == size


def _fields(draw: st.DrawFn) -> dict[str, int]:
    return {
        "pkt_num": draw(st.integers(0, WIDEST["pkt_num"])),
        "pkt_tai": draw(st.integers(0, 1023)),
        "pkt_nsec": draw(st.integers(0, 999_999_999)),
        "tv_sec": draw(st.integers(0, WIDEST["tv_sec"])),
        "tv_usec": draw(st.integers(0, 999_999)),
    }


@st.composite
def frames_of(draw: st.DrawFn, dp: DataProduct) -> tuple[dict[str, Any], np.ndarray]:
    header: dict[str, Any]
    if dp is PH256:
        header = {"quabo_num": draw(st.integers(0, 3)), **_fields(draw)}
    else:
        header = {key: _fields(draw) for key in pff.QUABO_KEYS}
    info = np.iinfo(dp.dtype)
    seed = draw(st.integers(0, 2**32 - 1))
    image = np.random.default_rng(seed).integers(
        info.min, info.max, size=dp.shape, endpoint=True, dtype=dp.dtype
    )
    return header, image


LAYOUTS: tuple[pff.HeaderLayout, ...] = ("file", "socket")


@st.composite
def files(draw: st.DrawFn) -> tuple[DataProduct, pff.HeaderLayout, list[Any]]:
    dp = draw(st.sampled_from(ALL))
    layout = draw(st.sampled_from(LAYOUTS))
    return dp, layout, draw(st.lists(frames_of(dp), min_size=1, max_size=4))


@settings(deadline=None)
@given(files())
def test_write_then_read_round_trip(case: tuple[DataProduct, pff.HeaderLayout, list[Any]]) -> None:
    dp, layout, content = case
    data = b"".join(pff.encode_frame(h, img, dp, layout) for h, img in content)
    got = list(pff.iter_frames(io.BytesIO(data), dp))
    assert len(got) == len(content)
    assert len({f.size for f in got}) == 1  # fixed widths: every frame the same size
    for frame, (header, image) in zip(got, content, strict=True):
        assert frame.header == header
        assert frame.image().dtype == dp.dtype
        np.testing.assert_array_equal(frame.image(), image)
        assert pff.format_header(dp, frame.header, layout) == frame.header_json


def test_free_form_headers_and_raw_bytes() -> None:
    free = pff.encode_frame({"note": "x", "n": 1}, bytes(512), PH256)
    assert free.startswith(b'{"note": "x", "n": 1}\n\n*')
    raw = pff.encode_frame(b'{"a": 1}', bytes(512), PH256)
    assert raw == b'{"a": 1}\n\n*' + bytes(512)
    with pytest.raises(pff.PffError, match="raw header must start with"):
        pff.encode_frame(b'{"a": 1}\n\n', bytes(512), PH256)
    with pytest.raises(pff.PffError, match="raw header must start with"):
        pff.encode_frame(b"[]", bytes(512), PH256)


def test_wrong_pixel_counts_are_named() -> None:
    with pytest.raises(pff.PffError, match=r"ph256 image needs 256 pixels \(16x16\), got 1024"):
        pff.encode_frame({}, np.zeros((32, 32), np.int16), PH256)
    with pytest.raises(pff.PffError, match="img16 image needs 2048 pixel bytes, got 2047"):
        pff.encode_frame({}, bytes(2047), IMG16)


def test_format_header_names_a_missing_field() -> None:
    with pytest.raises(pff.PffError, match="cannot format a ph256 header: missing field 'tv_usec'"):
        pff.format_header(
            PH256, {"quabo_num": 0, "pkt_num": 0, "pkt_tai": 0, "pkt_nsec": 0, "tv_sec": 0}
        )
    with pytest.raises(pff.PffError, match="missing field 'quabo_3'"):
        pff.format_header(IMG8, {k: quabo() for k in pff.QUABO_KEYS[:3]})


def test_pixels_are_written_little_endian() -> None:
    image = np.full(PH256.shape, -575, dtype=np.int16).astype(">i2")  # big-endian input
    frame = pff.encode_frame({"quabo_num": 0, **quabo()}, image, PH256)
    assert frame[-2:] == (64961).to_bytes(2, "little")
