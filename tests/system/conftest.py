"""Fixtures of the system tests: every test here is marked `system` and may boot the node root."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.system.harness import require, rootfs, vm, wheels

PROJECT = Path(__file__).resolve().parents[2]
SYSTEM_DIR = Path(__file__).resolve().parent
#: A cold cache builds the Debian root, the wheelhouse and the node venv (about 80 s here) inside the
#: first test that asks for the node; pytest-timeout counts fixture set-up against that test.
TIMEOUT = 900


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SYSTEM_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.system)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(TIMEOUT))


@pytest.fixture(scope="session")
def node_root(tmp_path_factory: pytest.TempPathFactory) -> rootfs.Node:
    """The node root of this session: cached Debian root and venv, plus the working tree's wheel."""
    require()
    logging.getLogger("panoseti.systest").setLevel(logging.INFO)
    scratch = tmp_path_factory.mktemp("systest")
    house = wheels.wheelhouse(PROJECT / "pyproject.toml")
    wheel = wheels.project_wheel(PROJECT, scratch / "wheel")
    return rootfs.prepare_node(house, wheel, scratch)


@pytest.fixture(scope="module")
def vm_node(request: pytest.FixtureRequest) -> rootfs.Node:
    """The session's node root, once QEMU is known to be there (skip before building anything)."""
    require(vm.TOOLS)
    node: rootfs.Node = request.getfixturevalue("node_root")
    return node
