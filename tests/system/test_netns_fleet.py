"""Several DAQ nodes on one machine: each DaqData daemon in a network namespace of its own.

Three namespaces, each linked to the root namespace by a veth pair (tests/netns.py), each
running `panoseti-daqdata` with its uds simulator on its own address and the clients' port
50051. One DaqDataClient in the root namespace merges the three, as a head node merges its DAQ
nodes (docs/clients.md, "Python"). A node that crashes (SIGKILL: no shutdown, its sockets left
behind) must not stop the merged stream, and once restarted on the same address it must be
streamed from again without the client doing anything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from panoseti_appliance.daqdata.client import DaqDataClient
from tests.daemons import Daemon, kill, start_daemon
from tests.integration.test_client_daemon import assert_live_image, daqdata_settings
from tests.netns import Namespace, fleet, netns_missing
from tests.prerequisites import unavailable

NODES = 3
PORT = 50051  # every node's own port space: the port clients expect
#: Generous bound on each phase; the merged stream normally moves on within a few seconds.
PHASE_SECONDS = 60.0
#: Images the merged stream must carry while the killed node is down.
DOWN_IMAGES = 30

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def namespaces() -> Iterator[list[Namespace]]:
    missing = netns_missing()
    if missing is not None:
        unavailable(missing)
    with fleet(NODES) as made:
        yield made


def start_node(ns: Namespace, workdir: Path, module: int, run: str) -> Daemon:
    """`panoseti-daqdata` inside `ns`, on `ns.address:50051`, simulating module `module`.

    The settings depend only on `workdir`, so a restart uses the same sockets and addresses;
    `run` names the restart's own subdirectory for its config and log.
    """
    listen = [f"{ns.address}:{PORT}", f"unix://{workdir}/d.sock"]
    settings = daqdata_settings(workdir, PORT, [module], True, listen=listen)
    return start_daemon(
        "panoseti-daqdata", workdir / run, settings, f"{ns.address}:{PORT}", prefix=ns.prefix
    )


@pytest.fixture
def nodes(namespaces: list[Namespace], tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Start nodes; every one still running is stopped and checked before the namespaces go."""
    started: list[Daemon] = []

    def start(ns: Namespace, workdir: Path, module: int, run: str = "first") -> Daemon:
        daemon = start_node(ns, workdir, module, run)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.proc.poll() is None:
            daemon.stop()


def test_merged_stream_outlives_a_killed_node_and_takes_it_back(
    namespaces: list[Namespace], nodes: Callable[..., Daemon], tmp_path: Path
) -> None:
    workdirs = [tmp_path / ns.name for ns in namespaces]
    daemons = [nodes(ns, workdirs[i], i + 1) for i, ns in enumerate(namespaces)]
    targets = [d.target for d in daemons]
    assert len({t.split(":")[0] for t in targets}) == NODES  # three hosts, not three ports
    victim, victim_module = 1, 2
    stop = threading.Event()
    phase = "all"
    seen: dict[str, set[int]] = {"all": set(), "down": set(), "back": set()}
    down_images = 0
    killed_at = Decimal(0)
    with DaqDataClient(hosts=targets) as client:
        assert client.valid_daq_hosts == set(targets)
        deadline = time.monotonic() + PHASE_SECONDS
        stream = client.stream_images(None, True, True, 0, stop_event=stop, reconnect=True)
        for image in stream:
            assert time.monotonic() < deadline, f"phase {phase} did not finish: {seen}"
            assert_live_image(image)
            module = image["module_id"]
            seen[phase].add(module)
            if phase == "all" and seen["all"] == {1, 2, 3}:
                assert kill(daemons[victim]) == -9
                killed_at = Decimal(time.time())
                phase, deadline = "down", time.monotonic() + PHASE_SECONDS
            elif phase == "down":
                # The killed node's last images may still be in the client's queue.
                if module == victim_module:
                    assert image["header"]["wr_unix_timestamp"] < killed_at
                down_images += 1
                if down_images >= DOWN_IMAGES and seen["down"] >= {1, 3}:
                    code, _ = client.last_stream_status[targets[victim]]
                    assert code is grpc.StatusCode.UNAVAILABLE
                    nodes(namespaces[victim], workdirs[victim], victim_module, "restarted")
                    phase, deadline = "back", time.monotonic() + PHASE_SECONDS
            elif phase == "back" and module == victim_module:
                # Simulated frames are stamped when sent: this one came from the new process.
                assert image["header"]["wr_unix_timestamp"] > killed_at
                if seen["back"] >= {1, 3}:
                    stop.set()
    assert seen["all"] == {1, 2, 3}
    assert seen["down"] >= {1, 3}
    assert seen["back"] == {1, 2, 3}
