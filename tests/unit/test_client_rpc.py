"""Requests shared by both DaqData clients (the reconnect back-off: test_retry.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from panoseti_appliance._proto import daq_data_pb2
from panoseti_appliance.config import ConfigError, HpIoConfig, read_hp_io_config
from panoseti_appliance.daqdata.client.api import _upload_requests
from panoseti_appliance.daqdata.client.rpc import (
    DEFAULT_SIM_HP_IO_CFG,
    batch_request,
    hp_io_settings,
    init_request,
    stream_request,
    upload_image,
)


def test_stream_request_keeps_fastest_interval_and_checks_module_ids() -> None:
    request = stream_request(True, False, -1, [0, 65535])
    assert request.update_interval_seconds == -1
    assert list(request.module_ids) == [0, 65535]
    assert request.stream_movie_data
    assert not request.stream_pulse_height_data
    with pytest.raises(ValueError, match=r"module_ids entry 65536 is outside 0\.\.65535"):
        stream_request(True, True, 1, [65536])
    with pytest.raises(ValueError, match="module_ids must hold integers"):
        stream_request(True, True, 1, ["1"])  # type: ignore[list-item]


def test_init_request_data_dir_precedence_and_simulate() -> None:
    cfg = {"update_interval_seconds": 0.1, "comments": "ignored"}
    node = Path("/mnt/node")
    assert init_request(hp_io_settings(cfg), node).data_dir == "/mnt/node"
    given = hp_io_settings({**cfg, "data_dir": "/mnt/cfg"})
    assert init_request(given, node).data_dir == "/mnt/cfg"
    # The original clients' empty data_dir means "the node's".
    assert init_request(hp_io_settings({**cfg, "data_dir": ""}), node).data_dir == "/mnt/node"
    assert init_request(hp_io_settings(cfg)).data_dir == ""
    assert init_request(hp_io_settings({**cfg, "simulate_daq": False}, simulate=True)).simulate_daq
    typed = HpIoConfig(data_dir=Path("/mnt/t"), update_interval_seconds=0.5, module_ids=[3])
    request = init_request(hp_io_settings(typed, simulate=True), node)
    assert (request.data_dir, request.update_interval_seconds, list(request.module_ids)) == (
        "/mnt/t",
        0.5,
        [3],
    )
    assert request.simulate_daq
    assert not typed.simulate_daq  # the caller's config is not changed


def test_packaged_simulate_config_sends_the_original_relative_data_dir() -> None:
    request = init_request(DEFAULT_SIM_HP_IO_CFG, Path("/mnt/node"))
    assert (request.data_dir, request.simulate_daq, request.force) == (
        "simulated_data_dir",
        True,
        True,
    )


@pytest.mark.parametrize(
    ("cfg", "simulate", "problem"),
    [
        (
            {"data_dir": "/x"},
            False,
            "hp_io_cfg: update_interval_seconds: required in an hp_io config; add it, e.g. "
            '"update_interval_seconds": 0.1 (seconds)',
        ),
        (
            {"datadir": "/x", "update_interval_seconds": 1},
            False,
            "hp_io_cfg: hp_io.datadir: unknown key; remove it (did you mean 'data_dir'?)",
        ),
        (
            {"update_interval_seconds": "fast"},
            False,
            "hp_io_cfg: hp_io.update_interval_seconds: Input should be a valid number, unable to "
            "parse string as a number (got 'fast')",
        ),
        (
            {"update_interval_seconds": 1, "module_ids": [70000]},
            False,
            "hp_io_cfg: hp_io.module_ids[0]: Input should be less than or equal to 65535 "
            "(got 70000)",
        ),
        (
            {"data_dir": "run", "update_interval_seconds": 1},
            False,
            "hp_io_cfg: hp_io.data_dir: data_dir 'run' is not an absolute path; give the full "
            "path on the DAQ node, e.g. /mnt/panoseti (or set simulate_daq: true)",
        ),
        ({"data_dir": "run", "update_interval_seconds": 1}, True, None),
    ],
)
def test_hp_io_rules_name_the_field_and_the_fix(
    cfg: dict[str, object], simulate: bool, problem: str | None
) -> None:
    if problem is None:
        assert hp_io_settings(cfg, simulate=simulate).data_dir == Path("run")
        return
    with pytest.raises(ConfigError) as info:
        hp_io_settings(cfg, simulate=simulate)
    assert info.value.problems == [problem]


def test_hp_io_file_problems_name_file_and_line(tmp_path: Path) -> None:
    good = tmp_path / "hp_io_config.json"
    good.write_text(json.dumps({"data_dir": "/mnt", "update_interval_seconds": 0.1}))
    assert read_hp_io_config(good).data_dir == Path("/mnt")
    with pytest.raises(ConfigError, match=r"missing\.json: file not found; check the path$"):
        read_hp_io_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError, match=r"bad\.json:1: the top level must be a JSON object$"):
        read_hp_io_config(bad)
    located = tmp_path / "located.json"
    located.write_text('{\n  "data_dir": "/mnt",\n  "update_interval_seconds": -1\n}\n')
    with pytest.raises(ConfigError) as info:
        read_hp_io_config(located)
    assert info.value.problems == [
        f"{located}:3: hp_io.update_interval_seconds: Input should be greater than 0 (got -1)"
    ]


async def test_uploads_wrap_images_in_batches_and_pass_requests_unchanged() -> None:
    images = [daq_data_pb2.PanoImage(module_id=m) for m in (3, 4, 5)]
    wrapped = daq_data_pb2.UploadImageRequest(pano_image=daq_data_pb2.PanoImage(module_id=9))
    got = [r async for r in _upload_requests([images[0], wrapped, *images[1:]], 2, None)]
    assert got[0] == batch_request(images[:1])  # flushed before the request passed through
    assert got[1] is wrapped
    assert got[2].pano_image.module_id == 4
    assert [i.module_id for i in got[2].more_images] == [5]
    assert len(got) == 3
    with pytest.raises(ValueError, match="needs PanoImage or UploadImageRequest"):
        upload_image({"module_id": 3})
