"""Fixtures shared by the integration tests of several modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.daemons import Daemon
from tests.integration.test_client_daemon import start_daqdata


@pytest.fixture(scope="module")
def sim_daqdata(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One `panoseti-daqdata` for all of a module's tests, its uds simulator streaming modules 1
    and 254 (a TCP and a unix:// listen address); stopped and checked after the module."""
    daemon = start_daqdata(tmp_path_factory.mktemp("sim-daqdata"), [1, 254])
    yield daemon
    daemon.stop()
