"""Requests shared by both DaqData clients (the reconnect back-off: test_retry.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from panoseti_appliance._proto import daq_data_pb2
from panoseti_appliance.daqdata.client.rpc import (
    init_request,
    load_hp_io_cfg,
    stream_request,
    upload_request,
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
    assert init_request(cfg, "/mnt/node").data_dir == "/mnt/node"
    assert init_request({**cfg, "data_dir": "/mnt/cfg"}, "/mnt/node").data_dir == "/mnt/cfg"
    assert init_request(cfg).data_dir == ""
    assert init_request({**cfg, "simulate_daq": False}, simulate=True).simulate_daq
    with pytest.raises(ValueError, match="'update_interval_seconds' must be a number"):
        init_request({"update_interval_seconds": "fast"})


def test_load_hp_io_cfg_errors(tmp_path: Path) -> None:
    good = tmp_path / "hp_io_config.json"
    good.write_text(json.dumps({"data_dir": "/mnt", "update_interval_seconds": 0.1}))
    assert load_hp_io_cfg(good)["data_dir"] == "/mnt"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_hp_io_cfg(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold a JSON object"):
        load_hp_io_cfg(bad)


def test_upload_request_wraps_images_only() -> None:
    image = daq_data_pb2.PanoImage(module_id=3)
    assert upload_request(image).pano_image.module_id == 3
    wrapped = daq_data_pb2.UploadImageRequest(pano_image=image)
    assert upload_request(wrapped) is wrapped
    with pytest.raises(ValueError, match="needs PanoImage or UploadImageRequest"):
        upload_request({"module_id": 3})
