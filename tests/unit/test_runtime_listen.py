"""Listen addresses: which inherited socket serves which address, and every refusal's wording."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from panoseti_appliance.runtime.inherited import Passed
from panoseti_appliance.runtime.listen import (
    ListenError,
    address_matches,
    check_tcp_address,
    check_unix_path,
)


def _tcp(host: str, port: int, family: int = socket.AF_INET) -> Passed:
    address: tuple[object, ...] = (host, port) if family == socket.AF_INET else (host, port, 0, 0)
    return Passed(3, "x", "listening", family, address)


@pytest.mark.parametrize(
    ("address", "passed", "matches"),
    [
        (
            "unix:///run/panoseti/daqdata.sock",
            Passed(3, "x", "listening", 1, "/run/panoseti/daqdata.sock"),
            True,
        ),
        (
            "unix:///run/panoseti//daqdata.sock",
            Passed(3, "x", "listening", 1, "/run/panoseti/daqdata.sock"),
            True,
        ),
        (
            "unix:///run/panoseti/daqdata.sock",
            Passed(3, "x", "listening", 1, "/run/other.sock"),
            False,
        ),
        ("unix-abstract:pano", Passed(3, "x", "listening", 1, b"\0pano"), True),
        ("0.0.0.0:50051", _tcp("0.0.0.0", 50051), True),
        ("0.0.0.0:50051", _tcp("::", 50051, socket.AF_INET6), True),  # ListenStream=50051
        ("[::]:50051", _tcp("0.0.0.0", 50051), True),
        ("0.0.0.0:50051", _tcp("0.0.0.0", 50052), False),
        ("127.0.0.1:50051", _tcp("127.0.0.1", 50051), True),
        ("localhost:50051", _tcp("::1", 50051, socket.AF_INET6), True),
        ("127.0.0.1:50051", _tcp("0.0.0.0", 50051), False),
        ("daq1.example:50051", _tcp("10.0.0.1", 50051), False),  # names are not resolved here
        ("0.0.0.0:50051", Passed(3, "x", "listening", 1, "/run/x.sock"), False),
    ],
)
def test_address_matches(address: str, passed: Passed, matches: bool) -> None:
    assert address_matches(address, passed) is matches


def test_missing_directory_is_refused_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "d.sock"
    with pytest.raises(ListenError) as err:
        check_unix_path(str(path), "daqdata.listen unix://x")
    assert str(err.value) == (
        f"daqdata.listen unix://x: directory {path.parent} does not exist; create it (under "
        "systemd RuntimeDirectory= does) or choose another path"
    )
    assert not path.parent.exists()


def test_a_file_that_is_not_a_socket_is_never_deleted(tmp_path: Path) -> None:
    path = tmp_path / "d.sock"
    path.write_text("precious")
    with pytest.raises(ListenError, match=r"exists and is not a socket; move that file away"):
        check_unix_path(str(path), "what")
    assert path.read_text() == "precious"


def test_a_stale_socket_is_removed_and_a_live_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(str(path))
    check_unix_path(str(path), "what")
    assert not path.exists()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as live:
        live.bind(str(path))
        live.listen()
        with pytest.raises(ListenError, match="in use by another running server"):
            check_unix_path(str(path), "what")
    assert path.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a read-only file system")
def test_an_unwritable_directory_is_refused(tmp_path: Path) -> None:
    # Root may write anywhere on a writable file system, so the test uses a read-only one.
    mount = tmp_path / "ro"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)], check=True)
    try:
        with pytest.raises(ListenError, match=r"is not writable by this user; fix its owner"):
            check_unix_path(str(mount / "d.sock"), "what")
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_busy_port_says_which_and_how_to_find_its_owner() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ListenError) as err:
            check_tcp_address(f"127.0.0.1:{port}", "daqdata.listen")
    assert str(err.value) == (
        f"daqdata.listen: cannot listen on 127.0.0.1:{port}: port {port} is in use; stop what "
        f"uses it (ss -ltnp 'sport = :{port}') or change the address"
    )


def test_a_host_that_is_not_local_is_refused() -> None:
    with pytest.raises(ListenError, match=r"no such local address; fix the host part"):
        check_tcp_address("192.0.2.1:50051", "daqdata.listen")
