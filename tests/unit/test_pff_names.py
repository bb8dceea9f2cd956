"""Data-file and run-directory names (docs/pff.md): every spelling the field has produced."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panoseti_appliance import pff
from panoseti_appliance.products import ALL, IMG16, PH256, DataProduct

START = dt.datetime(2025, 8, 2, 5, 31, 36, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "start",
    ["2025-08-02T05:31:36Z", "2025-08-02T05_31_36Z", "2025-08-02T05-31-36Z"],
    ids=["colons", "underscores", "hyphens"],
)
def test_all_three_start_spellings(start: str) -> None:
    name = pff.parse_data_file_name(f"start_{start}.dp_ph256.bpp_2.module_254.seqno_0.pff")
    assert name is not None
    assert name.start == start  # the value keeps every later "_"
    assert name.start_time == START
    assert (name.dp, name.bpp, name.module, name.seqno, name.sim) == ("ph256", 2, 254, 0, False)


def test_value_keeps_later_underscores_unlike_the_original() -> None:
    name = pff.parse_data_file_name(
        "start_2024-07-25T04_34_46Z.dp_img16.bpp_2.module_1.seqno_3.pff"
    )
    assert name is not None
    assert name.start == "2024-07-25T04_34_46Z"  # the original kept only "2024-07-25T04"
    assert name.pieces["start"] == "2024-07-25T04_34_46Z"
    assert name.seqno == 3


def test_extra_pieces_and_directories_are_ignored() -> None:
    path = Path("/data/module_7/obs_x/start_2025-08-02T05_31_36Z.dp_img16.bpp_2.module_3")
    name = pff.parse_data_file_name(f"{path}.seqno_12.debug_TRUNCATED.pff")
    assert name is not None
    assert (name.dp, name.module, name.seqno) == ("img16", 3, 12)  # module from the name only
    assert name.pieces["debug"] == "TRUNCATED"


def test_sim_names_and_missing_seqno() -> None:
    name = pff.parse_data_file_name("sim.dp_ph256.module_254.seqno_4.pff")
    assert name is not None
    assert (name.sim, name.dp, name.module, name.seqno, name.start, name.bpp) == (
        True,
        "ph256",
        254,
        4,
        None,
        None,
    )
    assert name.start_time is None
    bare = pff.parse_data_file_name("start_2025-08-02T05:31:36Z.dp_img8.bpp_1.module_2.pff")
    assert bare is not None
    assert bare.seqno == 0


@pytest.mark.parametrize(
    "name",
    [
        "hk.pff",
        "daq_config.json",
        "module_1.daq-active",
        "read_status_2",
        "recording_ended",
        "start_2025-08-02T05_31_36Z.dp_img16.bpp_x.module_1.pff",
        "sim.dp_img16.module_one.seqno_0.pff",
        "sim.dp_.module_1.seqno_0.pff",
    ],
)
def test_names_that_are_not_image_files(name: str) -> None:
    assert pff.parse_data_file_name(name) is None


def test_make_names_round_trip() -> None:
    made = pff.make_data_file_name("2025-08-02T05:31:36Z", IMG16, 254, 2)
    assert made == "start_2025-08-02T05_31_36Z.dp_img16.bpp_2.module_254.seqno_2.pff"
    parsed = pff.parse_data_file_name(made)
    assert parsed is not None
    assert parsed.start_time == START
    assert parsed.bpp == 2
    sim = pff.make_sim_file_name(PH256, 1, 0)
    assert sim == "sim.dp_ph256.module_1.seqno_0.pff"
    assert pff.parse_data_file_name(sim) == pff.DataFileName(
        dp="ph256",
        module=1,
        seqno=0,
        start=None,
        bpp=None,
        sim=True,
        pieces={"dp": "ph256", "module": "1", "seqno": "0"},
    )


@settings(deadline=None)
@given(
    dp=st.sampled_from(ALL),
    module=st.integers(0, 10_000),
    seqno=st.integers(0, 10**6),
    when=st.datetimes(dt.datetime(1970, 1, 1), dt.datetime(2999, 12, 31)),
    sep=st.sampled_from(":_-"),
)
def test_any_built_name_parses_back(
    dp: DataProduct, module: int, seqno: int, when: dt.datetime, sep: str
) -> None:
    start = when.strftime(f"%Y-%m-%dT%H{sep}%M{sep}%SZ")
    name = pff.parse_data_file_name(pff.make_data_file_name(start, dp, module, seqno))
    assert name is not None
    assert (name.dp, name.module, name.seqno) == (dp.name, module, seqno)
    assert name.start_time == when.replace(microsecond=0, tzinfo=dt.UTC)


def test_start_time_rejects_non_times() -> None:
    assert pff.parse_start_time("2025-13-02T05:31:36Z") is None
    assert pff.parse_start_time("yesterday") is None
    assert pff.parse_start_time("2025-08-02T05.31.36Z") is None


def test_run_directory_names() -> None:
    pieces = pff.parse_run_dir_name("obs_Lick.start_2024-07-25T04:34:06Z.runtype_sci-data.pffd")
    assert pieces == {"obs": "Lick", "start": "2024-07-25T04:34:06Z", "runtype": "sci-data"}
    assert pff.parse_run_dir_name("/data/module_1/obs_ci_run/") == {"obs": "ci_run"}
    assert pff.parse_run_dir_name(Path("/data/module_1/obs_Lick.start_x")) == {
        "obs": "Lick",
        "start": "x",
    }
    assert pff.parse_run_dir_name("module_1") is None
    assert pff.parse_run_dir_name("run_obs_Lick") is None
