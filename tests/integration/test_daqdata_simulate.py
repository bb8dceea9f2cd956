"""InitHpIo with simulate_daq=true end to end, in each simulator mode (docs/simulator.md).

The daemon starts the simulator itself (filesystem modes before the sources, uds and rpc after
them); a stream then sees the simulated module's movie and pulse-height frames; a following
real-mode InitHpIo stops the simulator, which removes everything it created.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from panoseti_appliance._proto import daq_data_pb2 as pb
from tests.integration.test_daqdata_support import Collector, daqdata, init_request, stream_request

MODULE = 224

SOURCE_OF_MODE: dict[str, dict[str, Any]] = {
    "uds": {},
    "rpc": {},
    "filesystem_poll": {"filesystem_poll": {"enabled": True}},
    "filesystem_pipe": {"filesystem_pipe": {"enabled": True}},
}


def _file_starts(prefix: str) -> Callable[[pb.PanoImage], bool]:
    return lambda image: image.file.startswith(prefix)


def _file_pattern(mode: str, dp: str) -> str:
    if mode == "uds":
        return f"uds_{dp}"
    if mode == "rpc":
        return f"rpc_sim_{dp}.pff"
    return f"sim.dp_{dp}.module_{MODULE}.seqno_"


@pytest.mark.parametrize("mode", list(SOURCE_OF_MODE))
def test_simulate_daq_init_streams_simulated_frames(tmp_path: Path, mode: str) -> None:
    sim_dir = tmp_path / "sim"
    extra = {
        "daqdata": {
            **SOURCE_OF_MODE[mode],
            "simulator": {
                "mode": mode,
                "module_ids": [MODULE],
                "update_interval_seconds": 0.02,
                "sim_data_dir": str(sim_dir),
            },
        }
    }
    with daqdata(tmp_path, extra) as d, d.stub() as stub:
        reply = stub.InitHpIo(init_request(simulate_daq=True, force=True), timeout=20)
        assert reply.success, reply.error_message
        with Collector(d, stream_request()) as stream:
            for dp in ("img16", "ph256"):
                image = stream.wait_for(
                    _file_starts(_file_pattern(mode, dp)), f"a simulated {dp} frame"
                )
                assert image.module_id == MODULE
        reply = stub.InitHpIo(init_request(data_dir=str(tmp_path / "data")), timeout=20)
        assert reply.success, reply.error_message
        if mode.startswith("filesystem"):
            leftovers = [p for p in sim_dir.rglob("*") if p.is_file() or p.is_fifo()]
            assert leftovers == []
