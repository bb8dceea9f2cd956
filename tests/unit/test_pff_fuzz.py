"""Truncated and corrupted files: a PffError or a correct prefix, never a hang or another error."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panoseti_appliance import pff
from panoseti_appliance.products import ALL, PH256, DataProduct

REAL = (
    Path(__file__).parents[1]
    / "data"
    / "start_2025-08-02T05_31_36Z.dp_ph256.bpp_2.module_254.seqno_0.pff"
)
FRAME = 636
RAW = REAL.read_bytes()[: 6 * FRAME]
ORIGINAL = list(pff.iter_frames(RAW, PH256))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for all examples: hypothesis examples cannot take function fixtures."""
    return tmp_path_factory.mktemp("fuzz")


fuzz = settings(deadline=None, max_examples=500, suppress_health_check=[HealthCheck.too_slow])


def same(a: pff.PffFrame, b: pff.PffFrame) -> bool:
    return (a.header_json, a.pixels, a.offset, a.index) == (
        b.header_json,
        b.pixels,
        b.offset,
        b.index,
    )


def read_all(
    data: bytes, dp: DataProduct = PH256
) -> tuple[list[pff.PffFrame], pff.PffError | None]:
    got: list[pff.PffFrame] = []
    try:
        for frame in pff.iter_frames(io.BytesIO(data), dp):
            got.append(frame)
    except pff.PffError as exc:
        return got, exc
    return got, None


@fuzz
@given(st.integers(0, len(RAW)))
def test_truncation_gives_exactly_the_complete_frames(length: int) -> None:
    data = RAW[:length]
    complete = length // FRAME
    lenient = list(pff.iter_frames(data, PH256, strict=False))
    assert len(lenient) == complete
    assert all(same(a, b) for a, b in zip(lenient, ORIGINAL, strict=False))
    got, error = read_all(data)
    assert len(got) == complete
    if length % FRAME:
        assert error is not None
        assert "truncated frame" in error.reason
        assert error.offset == complete * FRAME
    else:
        assert error is None


@st.composite
def damaged(draw: st.DrawFn) -> tuple[bytes, int]:
    """RAW with byte flips, insertions or deletions; returns it and the first damaged offset."""
    data = bytearray(RAW)
    first = len(data)
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "special"]))
        if kind == "flip":
            data[pos] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        else:  # the bytes the framing cares about
            data[pos] = draw(st.sampled_from(b'{}\n*"[0 '))
        first = min(first, pos)
    return bytes(data), first


@fuzz
@given(damaged())
def test_corruption_gives_an_error_or_an_intact_prefix(case: tuple[bytes, int]) -> None:
    data, first = case
    got, error = read_all(data)
    if error is not None:
        assert error.offset is None or 0 <= error.offset <= len(data)
        assert str(error)
    # Every frame that ends before the first damaged byte is exactly the original.
    intact = [f for f in got if f.end <= first]
    assert len(intact) == min(first // FRAME, len(ORIGINAL))
    assert all(same(a, b) for a, b in zip(intact, ORIGINAL, strict=False))


@fuzz
@given(damaged())
def test_corruption_never_crashes_file_tail_or_count(
    scratch: Path, case: tuple[bytes, int]
) -> None:
    data, _ = case
    path = scratch / REAL.name
    path.write_bytes(data)
    frame = pff.FileTail(path, PH256).last_frame()
    if frame is not None:
        assert data[frame.offset : frame.end] == frame.header_json + pff.HEADER_END + frame.pixels
        assert pff.header_problem(frame.header, PH256) is None
    try:
        count = pff.count_frames(path)
    except pff.PffError:
        return
    assert 0 <= count <= len(data) // (3 + PH256.bytes_per_image)


@fuzz
@given(st.sampled_from(ALL), st.binary(max_size=3000))
def test_arbitrary_bytes_never_hang_or_raise_anything_else(dp: DataProduct, data: bytes) -> None:
    got, error = read_all(data, dp)
    assert all(f.size == len(f.header_json) + 3 + dp.bytes_per_image for f in got)
    assert error is None or isinstance(error, pff.PffError)
