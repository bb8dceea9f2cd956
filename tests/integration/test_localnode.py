"""`panoseti_appliance.localnode`: the daemons a notebook or demo starts on this machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from panoseti_appliance import localnode
from panoseti_appliance.daqdata.client import DaqDataClient
from panoseti_appliance.ublox.client import UbloxControlClient

GONE_TIMEOUT = 30.0


def test_daqdata_simulator_streams_every_module_and_stops_cleanly() -> None:
    node = localnode.start_daqdata((3, 7))
    workdir = node.workdir
    try:
        assert node.target.startswith("127.0.0.1:")
        assert workdir.is_dir()
        with DaqDataClient(hosts=[node.target]) as client:
            assert client.init_sim(None, {"update_interval_seconds": 0.01, "force": True})
            modules = set()
            for n, image in enumerate(client.stream_images(None, True, True, -1)):
                modules.add(image["module_id"])
                if modules == {3, 7} and n >= 10:
                    break
    finally:
        code = node.stop()
    assert code == 0, node.log()
    assert not workdir.exists()  # its own temporary directory is removed
    assert "Traceback" not in node.log()  # the log outlives the directory
    assert node.stop() == 0  # stopping twice is harmless


def test_ubloxcontrol_in_a_given_directory(tmp_path: Path) -> None:
    with localnode.start_ubloxcontrol(workdir=tmp_path / "u") as server:
        with UbloxControlClient([server.target]) as client, pytest.raises(grpc.RpcError) as err:
            client.poll(["MON-VER"])
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # no InitF9t yet
    assert server.returncode == 0, server.log()
    assert (tmp_path / "u" / "panoseti-ubloxcontrol.log").is_file()  # a given directory stays


def test_a_daemon_that_cannot_start_is_reported_with_its_log() -> None:
    with pytest.raises(RuntimeError) as err:
        localnode.start_daqdata((-5,))
    message = str(err.value)
    assert message.startswith("panoseti-daqdata exited with 78 while starting; its log:")
    assert "daqdata.simulator.module_ids[0]" in message  # the daemon's own explanation


def test_the_daemon_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from panoseti_appliance import localnode\n"
            "server = localnode.start_ubloxcontrol(workdir=Path(sys.argv[1]))\n"
            "print(server.proc.pid, flush=True)\n"
            "time.sleep(600)\n",
            str(tmp_path / "u"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert starter.stdout is not None
    pid = int(starter.stdout.readline())
    starter.send_signal(signal.SIGKILL)  # no chance to stop its daemon itself
    starter.wait()
    deadline = time.monotonic() + GONE_TIMEOUT
    while _running(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            pytest.fail(f"the daemon {pid} outlived the process that started it")
        time.sleep(0.1)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan is reaped by init or the nearest subreaper)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
