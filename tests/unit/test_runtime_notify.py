"""sd_notify messages and fd-store requests, received on a real datagram socket."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from panoseti_appliance.runtime.notify import Notifier, watchdog_period
from tests.activation import NotifyListener


@pytest.fixture
def listener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifyListener]:
    notify = NotifyListener(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", notify.path)
    yield notify
    notify.close()


def test_notifier_sends_documented_messages(listener: NotifyListener) -> None:
    n = Notifier()
    assert n.enabled
    n.ready("hp_io RUNNING")
    n.status("3 streams")
    n.watchdog()
    n.stopping()
    listener.wait_for("STOPPING")
    assert listener.messages == [
        {"READY": "1", "STATUS": "hp_io RUNNING"},
        {"STATUS": "3 streams"},
        {"WATCHDOG": "1"},
        {"STOPPING": "1"},
    ]


def test_store_fd_passes_the_descriptor_and_remove_drops_it(listener: NotifyListener) -> None:
    left, right = socket.socketpair()
    n = Notifier()
    assert n.store_fd(left.fileno(), "hpconn.img16.ab")
    listener.wait_for("FDSTORE")
    ((fd, name),) = listener.stored()
    assert name == "hpconn.img16.ab"
    assert os.fstat(fd).st_ino == os.fstat(left.fileno()).st_ino  # the same socket
    assert n.remove_fd("hpconn.img16.ab")
    listener.wait_for("FDSTOREREMOVE")
    assert listener.stored() == []
    left.close()
    right.close()


def test_without_notify_socket_every_call_is_a_noop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = Notifier()
    assert not n.enabled
    assert not n.notify("READY=1")
    assert not n.store_fd(0, "x")


def test_a_send_failure_is_logged_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    n = Notifier()
    with caplog.at_level(logging.WARNING, logger="panoseti_appliance.runtime.notify"):
        assert not n.notify("READY=1")
        assert not n.notify("WATCHDOG=1")
    assert len([r for r in caplog.records if "sd_notify" in r.getMessage()]) == 1


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "20000000"}, 10.0),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "{pid}"}, 1.5),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "{other}"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
    ],
)
def test_watchdog_period(env: dict[str, str], expected: float | None) -> None:
    fmt = {"pid": str(os.getpid()), "other": str(os.getpid() + 1)}
    assert watchdog_period({k: v.format(**fmt) for k, v in env.items()}) == expected
