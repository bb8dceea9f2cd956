"""Descriptors passed like socket activation, read by a real child process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.activation import spawn_with_fds

# The child reads what it was passed, reports it, then proves the claimed listening socket is
# the real one by accepting a connection on it.
_CHILD = r"""
import json, os, sys
from panoseti_appliance.runtime.inherited import Inherited
inh = Inherited.from_environment()
report = {
    "left": [v for v in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES") if v in os.environ],
    "passed": [[p.fd, p.name, p.kind, p.address if isinstance(p.address, str) else None]
               for p in inh.passed],
    "named": [p.name for p in inh.named("hp")],
}
listening = inh.unclaimed("listening")
sock = inh.claim_socket(listening[0])
report["unclaimed_after"] = [p.name for p in inh.unclaimed()]
closed = inh.close_unclaimed()
report["closed"] = [p.fd for p in closed]
report["still_open"] = [fd for fd in report["closed"] if os.path.exists(f"/proc/self/fd/{fd}")]
print(json.dumps(report), flush=True)
conn, _ = sock.accept()
conn.sendall(b"accepted")
conn.close()
"""


def test_passed_descriptors_are_classified_claimed_and_the_rest_closed(tmp_path: Path) -> None:
    path = tmp_path / "img16.sock"
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(str(path))
    listening.listen()
    left, right = socket.socketpair()
    memfd = os.memfd_create("saved")
    os.write(memfd, b"bytes")
    child = spawn_with_fds(
        [sys.executable, "-c", _CHILD],
        [(listening.fileno(), "hashpipe"), (left.fileno(), "hpconn.img16.ab"), (memfd, "hpdata")],
        stdout=subprocess.PIPE,
    )
    for item in (listening, left):
        item.close()
    os.close(memfd)
    assert child.stdout is not None
    report = json.loads(child.stdout.readline())
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(30)
        client.connect(str(path))
        assert client.recv(16) == b"accepted"
    assert child.wait(timeout=60) == 0
    right.close()
    assert report["left"] == []  # never inherited by the daemon's own children
    assert report["passed"] == [
        [3, "hashpipe", "listening", str(path)],
        [4, "hpconn.img16.ab", "connected", ""],  # a socketpair end has no name
        [5, "hpdata", "file", None],
    ]
    assert report["named"] == ["hpconn.img16.ab", "hpdata"]
    assert report["unclaimed_after"] == ["hpconn.img16.ab", "hpdata"]
    assert report["closed"] == [4, 5]
    assert report["still_open"] == []


def test_descriptors_meant_for_another_process_are_not_taken() -> None:
    code = (
        "from panoseti_appliance.runtime.inherited import Inherited; "
        "print(len(Inherited.from_environment().passed))"
    )
    env = {**os.environ, "LISTEN_PID": "1", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "x"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"
