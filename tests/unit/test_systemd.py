"""systemd integration without systemd: real inherited fds, a real notify socket, journald choice."""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from panoseti_appliance import logsetup, systemd
from panoseti_appliance.config.models import LoggingConfig

# The child adopts its sockets, proves they are the real listening sockets by accepting one
# connection on each, and reports what it saw.
_CHILD = r"""
import json, os, sys
from panoseti_appliance.systemd import listen_fds
fds = listen_fds()
report = {"left": [v for v in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES") if v in os.environ]}
for name, socks in fds.items():
    report[name] = []
    for s in socks:
        conn, _ = s.accept()
        conn.sendall(name.encode())
        conn.close()
        report[name].append([s.fileno(), s.getsockname(), s.family == 1])
print(json.dumps(report), flush=True)
"""


def _listening(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.listen()
    return s


def _run_activated_child(socks: list[socket.socket], names: str | None) -> subprocess.Popen[str]:
    """Start the child with `socks` at fds 3, 4, … and the LISTEN_* variables, like systemd.

    The sockets are first duplicated above any target number, passed with pass_fds (no
    preexec_fn: this process may have threads), then moved into place by the shell, which also
    sets LISTEN_PID to its own pid before exec'ing Python (so the pid matches). bash, not
    sh: dash cannot redirect file descriptors above 9.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    env["LISTEN_FDS"] = str(len(socks))
    if names is not None:
        env["LISTEN_FDNAMES"] = names
    high = [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD, 100) for s in socks]
    moves = " ".join(f"{systemd.LISTEN_FDS_START + i}<&{fd} {fd}<&-" for i, fd in enumerate(high))
    script = f'exec {moves}; LISTEN_PID=$$ exec "$@"'
    try:
        return subprocess.Popen(
            ["bash", "-c", script, "bash", sys.executable, "-c", _CHILD],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            pass_fds=high,
        )
    finally:
        for fd in high:
            os.close(fd)


def _connect_and_read(*paths: Path) -> list[bytes]:
    """Connect to every path first (the child accepts in its own order), then read each."""
    conns = []
    for path in paths:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(30)
        c.connect(str(path))
        conns.append(c)
    try:
        return [c.recv(64) for c in conns]
    finally:
        for c in conns:
            c.close()


def test_listen_fds_adopts_inherited_sockets_by_name(tmp_path: Path) -> None:
    paths = [tmp_path / "a.sock", tmp_path / "b.sock", tmp_path / "c.sock"]
    socks = [_listening(p) for p in paths]
    child = _run_activated_child(socks, "ph256:img16:ph256")
    for s in socks:
        s.close()
    got = _connect_and_read(*paths)
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    report = json.loads(out)
    assert got == [b"ph256", b"img16", b"ph256"]
    assert report["left"] == []
    assert [entry[:2] for entry in report["ph256"]] == [[3, str(paths[0])], [5, str(paths[2])]]
    assert [entry[:2] for entry in report["img16"]] == [[4, str(paths[1])]]
    assert all(entry[2] for entry in report["ph256"] + report["img16"])


def test_listen_fds_without_names_uses_unknown(tmp_path: Path) -> None:
    path = tmp_path / "x.sock"
    sock = _listening(path)
    child = _run_activated_child([sock], None)
    sock.close()
    assert _connect_and_read(path) == [b"unknown"]
    out, _ = child.communicate(timeout=60)
    assert json.loads(out)["unknown"][0][:2] == [3, str(path)]


def test_listen_fds_for_another_pid_is_ignored_and_unset(tmp_path: Path) -> None:
    env = {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "ph256"}
    assert systemd.listen_fds(env) == {}
    assert env == {}


def test_listen_fds_absent_is_empty() -> None:
    env: dict[str, str] = {}
    assert systemd.listen_fds(env) == {}


def test_listen_fds_bad_count_is_ignored() -> None:
    env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "many"}
    assert systemd.listen_fds(env) == {}
    assert env == {}


def _notify_socket(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(30)
    return s


def test_notifier_sends_documented_messages(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with _notify_socket(path) as server:
        n = systemd.Notifier(path)
        assert n.enabled
        n.ready("ingesting")
        n.status("3 sources up")
        n.watchdog()
        n.stopping()
        n.ready()
        got = [server.recv(4096) for _ in range(5)]
        n.close()
    assert got == [
        b"READY=1\nSTATUS=ingesting",
        b"STATUS=3 sources up",
        b"WATCHDOG=1",
        b"STOPPING=1",
        b"READY=1",
    ]


def test_notifier_reads_notify_socket_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    with _notify_socket(path) as server:
        systemd.Notifier().ready()
        assert server.recv(4096) == b"READY=1"


def test_notifier_abstract_namespace() -> None:
    name = f"panoseti-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        server.settimeout(30)
        systemd.Notifier("@" + name).status("hi")
        assert server.recv(4096) == b"STATUS=hi"


def test_notifier_without_socket_is_noop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = systemd.Notifier()
    assert not n.enabled
    n.ready("x")
    n.watchdog()
    n.stopping()


def test_notifier_send_failure_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    n = systemd.Notifier(str(tmp_path / "nobody-listens"))
    with caplog.at_level(logging.WARNING, logger="panoseti_appliance.systemd"):
        n.ready()
        n.watchdog()
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
    assert systemd.watchdog_period({k: v.format(**fmt) for k, v in env.items()}) == expected


async def test_run_watchdog_pings_only_while_healthy(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    server = _notify_socket(path)
    server.setblocking(False)
    checks = 0
    healthy = True

    def is_healthy() -> bool:
        nonlocal checks
        checks += 1
        return healthy

    task = asyncio.create_task(systemd.run_watchdog(systemd.Notifier(path), 0.01, is_healthy))
    loop = asyncio.get_running_loop()
    try:
        first = await asyncio.wait_for(loop.sock_recv(server, 64), 30)
        second = await asyncio.wait_for(loop.sock_recv(server, 64), 30)
        assert first == second == b"WATCHDOG=1"
        healthy = False
        # Drain what was sent before the switch, then let the loop check health several times.
        seen = checks
        while checks < seen + 5:
            await asyncio.sleep(0.01)
        while True:
            try:
                server.recv(64)
            except BlockingIOError:
                break
        seen = checks
        while checks < seen + 5:
            await asyncio.sleep(0.01)
        with pytest.raises(BlockingIOError):
            server.recv(64)
    finally:
        task.cancel()
        server.close()


def test_setup_logging_stderr_format(capsys: pytest.CaptureFixture[str]) -> None:
    logsetup.setup_logging(LoggingConfig(level="debug", target="stderr"), "panoseti-test")
    logsetup.setup_logging(LoggingConfig(level="debug", target="stderr"), "panoseti-test")
    logging.getLogger("panoseti.x").debug("hello %s", "there")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].endswith(" DEBUG panoseti.x: hello there")
    assert logging.getLogger().level == logging.DEBUG


def test_setup_logging_journald_target_uses_journal_handler() -> None:
    from systemd.journal import JournalHandler

    root = logging.getLogger()
    saved = list(root.handlers)
    try:
        logsetup.setup_logging(LoggingConfig(level="warning", target="journald"), "panoseti-x")
        assert len(root.handlers) == 1
        assert isinstance(root.handlers[0], JournalHandler)
        assert root.level == logging.WARNING
    finally:
        logsetup.setup_logging(LoggingConfig(target="stderr"), "pytest")
        root.handlers[:] = saved


@pytest.mark.parametrize("matching", [True, False])
def test_auto_target_follows_journal_stream_of_stderr(tmp_path: Path, matching: bool) -> None:
    """JOURNAL_STREAM counts only when it names the stream that really is our stderr."""
    err_file = tmp_path / "stderr"
    err_file.touch()
    st = (tmp_path / ("stderr" if matching else ".")).stat()
    code = "from panoseti_appliance.logsetup import stderr_is_journal; print(stderr_is_journal())"
    with err_file.open("w") as err:
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"},
            stderr=err,
            capture_output=False,
            stdout=subprocess.PIPE,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    assert out.strip() == str(matching)


def test_auto_target_without_journal_stream_is_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    assert not logsetup.stderr_is_journal()
    assert not logsetup.stderr_is_journal({"JOURNAL_STREAM": "garbage"})
