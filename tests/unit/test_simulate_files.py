"""The filesystem simulators (poll and pipe) on a real directory and a real FIFO."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from panoseti_appliance import pff
from panoseti_appliance.config import SimulatorConfig
from panoseti_appliance.daqdata.sim.files import FilesystemEmitter, pipe_record
from panoseti_appliance.daqdata.sim.simulator import Simulator, SimulatorError
from panoseti_appliance.products import IMG16, PH256, PH1024
from tests.producers import until

WAIT = 30.0


def make_sim(tmp_path: Path, mode: str, **kw: Any) -> Simulator:
    cfg: dict[str, Any] = {
        "mode": mode,
        "module_ids": [1, 254],
        "update_interval_seconds": 0,
        "sim_data_dir": tmp_path / "sim",
    }
    cfg.update(kw)
    return Simulator(
        SimulatorConfig.model_validate(cfg),
        socket_template=str(tmp_path / "unused.{dp}.sock"),
        pipe_name="read_status_2",
        rpc_target=None,
    )


def files_of(run_dir: Path, dp: str) -> list[Path]:
    return sorted(run_dir.glob(f"sim.dp_{dp}.*.pff"), key=lambda p: p.name)


def test_pipe_records_are_ten_padded_bytes() -> None:
    assert pipe_record(IMG16) == b"img16     "
    assert pipe_record(PH1024) == b"ph1024    "


async def test_poll_mode_writes_the_first_step_before_start_returns(tmp_path: Path) -> None:
    sim = make_sim(tmp_path, "filesystem_poll", update_interval_seconds=3600)
    assert sim.starts_before_sources
    assert sim.data_dir == tmp_path / "sim"
    await sim.start()
    try:
        for module in (1, 254):
            run = tmp_path / "sim" / f"module_{module}" / "obs_SIMULATE"
            assert (run / f"module_{module}.daq-active").is_file()
            assert not (run / "read_status_2").exists()
            for dp in (IMG16, PH256):
                (path,) = files_of(run, dp.name)
                assert path.name == f"sim.dp_{dp.name}.module_{module}.seqno_0.pff"
                frames = list(pff.iter_frames(path, dp))
                assert len(frames) == 1
                assert not pff.header_wr_time(frames[0].header).desync
    finally:
        await sim.stop()
    assert not (tmp_path / "sim").exists(), "everything created must be removed"


async def test_rollover_counts_per_product_and_keeps_two_files(tmp_path: Path) -> None:
    sim = make_sim(tmp_path, "filesystem_poll", frames_per_pff=3, frame_limit=10, module_ids=[9])
    run = tmp_path / "sim" / "module_9" / "obs_SIMULATE"
    await sim.start()
    try:
        await sim.wait()
        for dp in (IMG16, PH256):
            paths = files_of(run, dp.name)
            # 10 frames, 3 per file: seqno 0..3, only the newest two kept (3 frames, 1 frame).
            assert [pff.parse_data_file_name(p).seqno for p in paths] == [2, 3]  # type: ignore[union-attr]
            assert [len(list(pff.iter_frames(p, dp))) for p in paths] == [3, 1]
            assert sim.stats.get(dp.name, "sent") == 10
            assert sim.stats.get(dp.name, "rollovers") == 3
        # The movie frames replay the bundled movie in order: step n is movie[n].
        movie = list(pff.iter_frames(files_of(run, "img16")[0], IMG16))
        assert [f.header["quabo_0"]["pkt_num"] for f in movie] == [20600, 20700, 20800]
    finally:
        await sim.stop()
    assert not (tmp_path / "sim").exists()


async def test_pipe_mode_signals_each_frame_and_drops_without_reader(tmp_path: Path) -> None:
    sim = make_sim(tmp_path, "filesystem_pipe", module_ids=[2], update_interval_seconds=3600)
    fifo = tmp_path / "sim" / "module_2" / "obs_SIMULATE" / "read_status_2"
    await sim.start()
    try:
        assert fifo.exists()
        assert not fifo.is_file()
        # No reader yet: the first step's records were dropped, the files written anyway.
        assert sim.stats.get("img16", "pipe_no_reader") == 1
        assert sim.stats.get("ph256", "pipe_no_reader") == 1
        assert sim.stats.get("img16", "sent") == 1
    finally:
        await sim.stop()
    assert not (tmp_path / "sim").exists()


async def test_pipe_mode_records_reach_a_reader(tmp_path: Path) -> None:
    # The directory exists beforehand, so the reader can open the FIFO as soon as it appears.
    run = tmp_path / "sim" / "module_2" / "obs_SIMULATE"
    run.mkdir(parents=True)
    sim = make_sim(tmp_path, "filesystem_pipe", module_ids=[2], update_interval_seconds=0.02)
    await sim.start()
    fd = os.open(run / "read_status_2", os.O_RDONLY | os.O_NONBLOCK)
    received = bytearray()

    def read_some() -> bool:
        with contextlib.suppress(BlockingIOError):
            received.extend(os.read(fd, 4096))
        return len(received) >= 40

    try:
        await until(read_some, "4 records")
    finally:
        os.close(fd)
        await sim.stop()
    assert len(received) % 10 == 0
    records = [bytes(received[i : i + 10]) for i in range(0, len(received), 10)]
    assert set(records) == {b"img16     ", b"ph256     "}
    assert records[0::2] == [b"img16     "] * (len(records) // 2)
    # The directory predates the simulator: it stays, emptied of what the simulator made.
    assert run.is_dir()
    assert list(run.iterdir()) == []


async def test_pipe_full_drops_records_without_blocking(tmp_path: Path) -> None:
    cfg = SimulatorConfig.model_validate({"module_ids": [4], "sim_data_dir": tmp_path / "sim"})
    emitter = FilesystemEmitter(cfg, pipe_name="read_status_2")
    await emitter.open()
    fifo = tmp_path / "sim" / "module_4" / "obs_SIMULATE" / "read_status_2"
    # A reader that never reads, on the smallest pipe the kernel allows (one page).
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    capacity = fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 4096)
    header = {"quabo_num": 0, "pkt_num": 1, "pkt_tai": 2, "pkt_nsec": 3, "tv_sec": 4, "tv_usec": 5}
    frames = capacity // 10 + 50
    try:
        for n in range(frames):
            await emitter.emit(4, PH256, header, bytes(PH256.bytes_per_image), n)
        assert emitter.stats.get("ph256", "sent") == frames
        assert emitter.stats.get("ph256", "pipe_records") == capacity // 10
        assert emitter.stats.get("ph256", "pipe_full") == frames - capacity // 10
        assert os.read(fd, 10) == b"ph256     "
    finally:
        os.close(fd)
        await emitter.close()
    assert not (tmp_path / "sim").exists()


async def test_unwritable_data_dir_is_a_simulator_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    sim = make_sim(tmp_path, "filesystem_poll", sim_data_dir=blocker / "sim")
    with pytest.raises(
        SimulatorError, match=r"filesystem_poll simulator: cannot prepare .*sim_data_dir"
    ):
        await sim.start()
    assert blocker.read_text() == "not a directory"


async def test_load_failure_names_the_file(tmp_path: Path) -> None:
    sim = make_sim(tmp_path, "filesystem_poll", ph_pff_path=tmp_path / "missing.pff")
    with pytest.raises(SimulatorError, match=r"ph source .*missing\.pff: no such file"):
        await sim.start()
    assert not (tmp_path / "sim").exists(), "nothing is created when loading fails"


async def test_a_failing_write_stops_the_loop_with_a_reason(tmp_path: Path) -> None:
    sim = make_sim(tmp_path, "filesystem_poll", frames_per_pff=1, update_interval_seconds=0.01)
    await sim.start()
    try:
        shutil.rmtree(tmp_path / "sim")  # every frame opens a new file: the next one fails
        with pytest.raises(
            SimulatorError, match=r"filesystem_poll simulator stopped at step \d+: .*No such file"
        ):
            await asyncio.wait_for(sim.wait(), timeout=WAIT)
        assert sim.finished
    finally:
        await sim.stop()
    assert not (tmp_path / "sim").exists()
