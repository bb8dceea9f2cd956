"""Loading, validating and restamping the simulator's source frames."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from panoseti_appliance import pff
from panoseti_appliance.daqdata.sim.frames import (
    FrameLoadError,
    emission_time_fields,
    load_frames,
    restamp,
)
from panoseti_appliance.products import IMG16, PH256

DATA = Path(__file__).resolve().parent.parent / "data"
PH_FILE = DATA / "start_2025-08-02T05_31_36Z.dp_ph256.bpp_2.module_254.seqno_0.pff"


def test_loads_every_frame_of_the_desynchronised_real_file() -> None:
    frames = load_frames(PH_FILE, PH256, "ph")
    assert len(frames) == 88
    assert all(len(f.pixels) == PH256.bytes_per_image for f in frames)
    assert frames[0].header["pkt_num"] == 5124
    # Every frame of this file is WR-desynchronised: loading must not care.
    assert all(pff.header_wr_time(f.header).desync for f in frames)


@pytest.mark.parametrize(
    "now_ns",
    [1754112728_985339123, 1_700_000_000_000_000_000, 1_700_000_000_999_999_999, 1023 * 10**9],
)
def test_emission_fields_give_the_same_wr_and_host_time(now_ns: int) -> None:
    fields = emission_time_fields(now_ns)
    assert fields["tv_sec"] * 10**6 + fields["tv_usec"] == now_ns // 1000
    wr = pff.wr_to_unix(fields["pkt_tai"], fields["pkt_nsec"], fields["tv_sec"])
    assert not wr.desync
    assert wr.unix_ns == now_ns // 1000 * 1000
    assert 0 <= fields["pkt_tai"] < 1024


def test_restamp_flat_header_keeps_identity_fields() -> None:
    header = load_frames(PH_FILE, PH256, "ph")[0].header
    before = time.time_ns()
    out = restamp(header)
    after = time.time_ns()
    assert out["quabo_num"] == header["quabo_num"] == 3
    assert out["pkt_num"] == header["pkt_num"]
    wr = pff.header_wr_time(out)
    assert not wr.desync
    assert wr.unix_ns is not None
    assert before // 1000 * 1000 <= wr.unix_ns <= after
    assert header["tv_sec"] == 1754112728, "the source header must not be modified"
    # The restamped header still encodes in the producer's fixed-width layout.
    assert len(pff.format_header(PH256, out)) == 121


def test_restamp_sets_every_quabo_of_a_module_header() -> None:
    header = {
        f"quabo_{q}": {"pkt_num": q, "pkt_tai": 1, "pkt_nsec": 2, "tv_sec": 3, "tv_usec": 4}
        for q in range(4)
    }
    out = restamp(header, now_ns=1_754_112_728_123_456_789)
    for q in range(4):
        record = out[f"quabo_{q}"]
        assert record["pkt_num"] == q
        assert (record["tv_sec"], record["tv_usec"]) == (1_754_112_728, 123_456)
        assert not pff.wr_to_unix(record["pkt_tai"], record["pkt_nsec"], record["tv_sec"]).desync
        assert header[f"quabo_{q}"]["tv_sec"] == 3


def test_missing_file_names_the_option(tmp_path: Path) -> None:
    with pytest.raises(
        FrameLoadError, match=r"movie source .*nope\.pff: no such file.*movie_pff_path"
    ):
        load_frames(tmp_path / "nope.pff", IMG16, "movie")


def test_file_named_for_another_product_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FrameLoadError, match="file name says dp_ph256 but movie_type is img16"):
        load_frames(PH_FILE, IMG16, "movie")


def test_truncated_file_is_refused_with_the_reason(tmp_path: Path) -> None:
    bad = tmp_path / PH_FILE.name
    bad.write_bytes(PH_FILE.read_bytes()[:1000])
    with pytest.raises(FrameLoadError, match=rf"ph source {bad}: .*trunc"):
        load_frames(bad, PH256, "ph")


def test_empty_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "sim.dp_ph256.module_1.seqno_0.pff"
    empty.write_bytes(b"")
    with pytest.raises(FrameLoadError, match="no complete ph256 frame"):
        load_frames(empty, PH256, "ph")


def test_header_without_timing_fields_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.pff"
    header = json.dumps({"quabo_num": 1, "pkt_num": 2}).encode()
    path.write_bytes(header + pff.HEADER_END + bytes(PH256.bytes_per_image))
    with pytest.raises(
        FrameLoadError, match=r"frame 0: ph256 header field pkt_tai is missing or not an integer"
    ):
        load_frames(path, PH256, "ph")


def test_module_header_without_quabos_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "movie.pff"
    header = json.dumps({"quabo_0": {"pkt_num": 1}}).encode()
    path.write_bytes(header + pff.HEADER_END + bytes(IMG16.bytes_per_image))
    with pytest.raises(
        FrameLoadError, match="frame 0: img16 header lacks quabo_1, quabo_2, quabo_3"
    ):
        load_frames(path, IMG16, "movie")
