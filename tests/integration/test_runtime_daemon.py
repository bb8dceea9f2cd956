"""Both daemons through the shared runner: exit codes, listeners adopted from a socket-activation
peer, and the restart hand-over of Hashpipe producers through the fd store.

Descriptors are passed the way the service manager passes them (tests/activation.py; the real
`systemd-socket-activate` where it fits). tests/system repeats the paths that need PID 1 itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2
from grpc_health.v1 import health_pb2

from panoseti_appliance._proto import daq_data_pb2_grpc as pb_grpc
from panoseti_appliance.grpcstubs import health_stub
from panoseti_appliance.multihost import ClientTls, sync_channel
from tests.activation import NotifyListener, spawn_with_fds
from tests.certs import Certs
from tests.daemons import free_tcp_port
from tests.integration.test_access_tls import certs, tls_settings
from tests.producers import HashpipeProducer, garbage, socket_frame

BIN = Path(sys.executable).parent
__all__ = ["certs"]  # fixture used by this module
DAEMONS = ("panoseti-daqdata", "panoseti-ubloxcontrol")
SECTION = {"panoseti-daqdata": "daqdata", "panoseti-ubloxcontrol": "ublox"}
WAIT = 30.0


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PANOSETI_", "NOTIFY_"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _config(tmp_path: Path, daemon: str, listen: list[str], extra: str = "") -> Path:
    """A config file: the daemon's listen addresses, Hashpipe sockets under tmp_path."""
    lines = ["daqdata:", f"  hashpipe: {{socket_template: '{tmp_path}/hp_{{dp}}.sock'}}"]
    if SECTION[daemon] == "daqdata":
        lines.append(f"  listen: {json.dumps(listen)}")
    else:
        lines += ["ublox:", f"  listen: {json.dumps(listen)}"]
    lines.append("logging: {target: stderr}")
    path = tmp_path / f"{daemon}.yaml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def _run(daemon: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / daemon), "--config", str(config)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )


def _only_error(stderr: str) -> str:
    """The one ERROR line a refused start logs; no traceback anywhere."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, stderr
    return errors[0]


@pytest.mark.parametrize("daemon", DAEMONS)
def test_a_busy_port_exits_69_with_one_line(tmp_path: Path, daemon: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _run(daemon, _config(tmp_path, daemon, [f"127.0.0.1:{port}"]))
    assert result.returncode == 69  # EX_UNAVAILABLE
    assert _only_error(result.stderr).endswith(
        f"{SECTION[daemon]}.listen: cannot listen on 127.0.0.1:{port}: port {port} is in use; "
        f"stop what uses it (ss -ltnp 'sport = :{port}') or change the address"
    )


@pytest.mark.parametrize("daemon", DAEMONS)
def test_a_missing_directory_or_a_file_in_the_way_exits_69(tmp_path: Path, daemon: str) -> None:
    missing = tmp_path / "nope" / "grpc.sock"
    result = _run(daemon, _config(tmp_path, daemon, [f"unix://{missing}"]))
    assert result.returncode == 69
    assert f"directory {missing.parent} does not exist" in _only_error(result.stderr)
    blocker = tmp_path / "grpc.sock"
    blocker.write_text("keep me")
    result = _run(daemon, _config(tmp_path, daemon, [f"unix://{blocker}"]))
    assert result.returncode == 69
    assert f"{blocker} exists and is not a socket" in _only_error(result.stderr)
    assert blocker.read_text() == "keep me"


def test_a_hashpipe_path_in_the_way_exits_69(tmp_path: Path) -> None:
    blocker = tmp_path / "hp_ph256.sock"
    blocker.write_text("keep me")
    port = free_tcp_port()
    result = _run("panoseti-daqdata", _config(tmp_path, "panoseti-daqdata", [f"127.0.0.1:{port}"]))
    assert result.returncode == 69
    assert f"uds source ph256 (daqdata.hashpipe.socket_template): {blocker} exists" in (
        _only_error(result.stderr)
    )
    assert blocker.read_text() == "keep me"
    assert not list(tmp_path.glob("hp_img*.sock"))  # what was bound before is removed again


@pytest.mark.parametrize("daemon", DAEMONS)
def test_an_invalid_configuration_exits_78_before_listening(tmp_path: Path, daemon: str) -> None:
    port = free_tcp_port()
    config = _config(tmp_path, daemon, [f"127.0.0.1:{port}"], "hp_io: {module_ids: [-1]}\n")
    result = _run(daemon, config)
    assert result.returncode == 78  # EX_CONFIG
    check = subprocess.run(
        [str(BIN / "panoseti"), "config", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert check.returncode != 0
    assert result.stderr == f"{daemon}: {check.stderr}"  # the same text as `config check`
    assert "hp_io.module_ids[0]: Input should be greater than or equal to 0" in result.stderr
    assert not list(tmp_path.glob("*.sock"))


def test_set_overrides_every_layer_and_is_checked_like_the_rest(tmp_path: Path) -> None:
    port, other = free_tcp_port(), free_tcp_port()
    config = _config(tmp_path, "panoseti-daqdata", [f"127.0.0.1:{port}"])
    bad = subprocess.run(
        [
            str(BIN / "panoseti-daqdata"),
            "--config",
            str(config),
            "--set",
            "daqdata.max_concurrent_rpcs=0",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert bad.returncode == 78
    assert "command line: daqdata.max_concurrent_rpcs: " in bad.stderr
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(BIN / "panoseti-daqdata"),
                "--config",
                str(config),
                "--set",
                f'daqdata.listen=["127.0.0.1:{other}"]',
                "--set",
                "daqdata.max_concurrent_rpcs=3",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(),
        )
    try:
        _wait_ping(f"127.0.0.1:{other}")  # the address from --set, not the file's
    finally:
        assert _stop(proc) == 0
    assert f"listening on 127.0.0.1:{other}" in log.read_text()


def _wait_ping(target: str, timeout: float = WAIT) -> None:
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.DaqDataStub(channel)
        stub.Ping(empty_pb2.Empty(), timeout=timeout, wait_for_ready=True)


def _activate(
    listen: list[str], fdname: str, argv: list[str], log: Path
) -> subprocess.Popen[bytes]:
    """The daemon behind `systemd-socket-activate`, which holds `listen` and starts the daemon
    on the first connection, passing the sockets named `fdname`."""
    tool = shutil.which("systemd-socket-activate")
    assert tool is not None, "systemd-socket-activate (Debian package systemd) is required"
    args = [tool, *(f"--listen={a}" for a in listen), f"--fdname={fdname}", *argv]
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=_env())


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=WAIT)


def test_a_grpc_unix_socket_from_systemd_is_served_through_the_relay(tmp_path: Path) -> None:
    path = tmp_path / "daqdata.sock"
    config = _config(tmp_path, "panoseti-daqdata", [f"unix://{path}"])
    log = tmp_path / "daemon.log"
    proc = _activate(
        [str(path)], "grpc", [str(BIN / "panoseti-daqdata"), "--config", str(config)], log
    )
    try:
        # The first connection starts the daemon (socket activation), then is served by it.
        _wait_ping(f"unix://{path}")
        with grpc.insecure_channel(f"unix://{path}") as channel:
            health = health_stub(channel)
            reply = health.Check(
                health_pb2.HealthCheckRequest(service="daqdata.DaqData"), timeout=10
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        assert _stop(proc) == 0
    text = log.read_text()
    assert "Traceback" not in text
    assert path.is_socket()  # the socket is the activator's: never unlinked by the daemon


def test_systemd_name_listen_address_serves_a_tcp_socket(tmp_path: Path) -> None:
    port = free_tcp_port()
    config = _config(tmp_path, "panoseti-daqdata", ["systemd:grpc"])
    log = tmp_path / "daemon.log"
    argv = [str(BIN / "panoseti-daqdata"), "--config", str(config)]
    proc = _activate([f"127.0.0.1:{port}"], "grpc", argv, log)
    try:
        _wait_ping(f"127.0.0.1:{port}")
    finally:
        assert _stop(proc) == 0


def test_tls_on_a_tcp_socket_from_systemd_is_served_through_the_relay(
    tmp_path: Path, certs: Certs
) -> None:
    port = free_tcp_port()
    tls = json.dumps(tls_settings(certs))
    config = _config(tmp_path, "panoseti-daqdata", ["systemd:grpc"], f"access: {{tls: {tls}}}\n")
    argv = [str(BIN / "panoseti-daqdata"), "--config", str(config)]
    log = tmp_path / "daemon.log"
    proc = _activate([f"127.0.0.1:{port}"], "grpc", argv, log)
    target = f"127.0.0.1:{port}"
    try:
        # The relay forwards the encrypted bytes; the daemon's private socket does the TLS.
        with sync_channel(target, ClientTls(str(certs.path("ca.crt")))) as secure:
            pb_grpc.DaqDataStub(secure).Ping(empty_pb2.Empty(), timeout=WAIT, wait_for_ready=True)
        with grpc.insecure_channel(target) as plain, pytest.raises(grpc.RpcError) as info:
            pb_grpc.DaqDataStub(plain).Ping(empty_pb2.Empty(), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        assert _stop(proc) == 0
    assert "Traceback" not in log.read_text()


def test_a_systemd_name_nobody_passed_exits_69(tmp_path: Path) -> None:
    result = _run("panoseti-daqdata", _config(tmp_path, "panoseti-daqdata", ["systemd:grpc"]))
    assert result.returncode == 69
    assert _only_error(result.stderr).endswith(
        "daqdata.listen: systemd:grpc: systemd passed no listening socket named 'grpc'; add "
        "FileDescriptorName=grpc to the socket unit, start the daemon through it, or remove "
        "the address"
    )


def test_an_inherited_socket_nothing_uses_is_closed_with_a_warning(tmp_path: Path) -> None:
    stray = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stray.bind(str(tmp_path / "stray.sock"))
    stray.listen()
    port = free_tcp_port()
    config = _config(tmp_path, "panoseti-daqdata", [f"127.0.0.1:{port}"])
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        proc = spawn_with_fds(
            [str(BIN / "panoseti-daqdata"), "--config", str(config)],
            [(stray.fileno(), "leftover")],
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    stray.close()
    try:
        _wait_ping(f"127.0.0.1:{port}")
    finally:
        assert _stop(proc) == 0
    assert (
        f"closed fd 3 (listening '{tmp_path / 'stray.sock'}', FileDescriptorName=leftover): "
        "nothing in the configuration uses it" in log.read_text()
    )


# ---- restart hand-over ---------------------------------------------------------------------


class SteadyProducer:
    """A Hashpipe-like ph256 producer writing frames at a fixed rate on one connection.

    Blocking writes, so every frame it counts as sent is in the socket: the test then checks that
    the daemons framed every one of them across the restart (what the kernel buffer holds while
    nobody reads is the bench's business, bench/bench_restart.py).
    """

    def __init__(self, path: Path, rate_hz: float) -> None:
        self.producer = HashpipeProducer(path, "ph256")
        self.period = 1.0 / rate_hz
        self.sent = 0
        self.error: OSError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                self.producer.send(7)
                self.sent += 1
                next_at += self.period
                time.sleep(max(0.0, next_at - time.monotonic()))
        except OSError as exc:  # a closed connection would show up here
            self.error = exc

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(WAIT)
        self.producer.close()
        return self.sent


def _frames_in(log: str) -> int:
    (count,) = re.findall(r"counters uds: .*?\bframes_in=(\d+)", log)
    return int(count)


def test_a_restart_hands_producers_to_the_next_process_and_loses_no_frame(
    tmp_path: Path,
) -> None:
    store = NotifyListener(tmp_path / "notify")
    hp_path = tmp_path / "hp_ph256.sock"
    held = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # what the socket unit holds
    held.bind(str(hp_path))
    held.listen()
    port = free_tcp_port()
    config = _config(
        tmp_path,
        "panoseti-daqdata",
        [f"127.0.0.1:{port}"],
        "hp_io: {update_interval_seconds: 0.01}\n",
    )
    argv = [str(BIN / "panoseti-daqdata"), "--config", str(config)]
    env = {**_env(), **store.env}

    def start(name: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"{name}.log"
        with log.open("wb") as out:
            proc = spawn_with_fds(
                argv,
                [(held.fileno(), "hashpipe"), *store.stored()],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return proc, log

    first, first_log = start("first")
    try:
        store.wait_for("READY")
        producer = SteadyProducer(hp_path, rate_hz=1000)
        deadline = time.monotonic() + WAIT
        while "producer connected" not in first_log.read_text():
            assert time.monotonic() < deadline, first_log.read_text()
            time.sleep(0.01)
        time.sleep(0.3)
        assert _stop(first) == 0
        stored = store.wait_stored("hpdata.ph256.")  # the bytes read but not framed
        assert any(name.startswith("hpconn.ph256.") for name in stored), stored
        ready_before = len([m for m in store.messages if m.get("READY") == "1"])
        second, second_log = start("second")
        try:
            deadline = time.monotonic() + WAIT
            while len([m for m in store.messages if m.get("READY") == "1"]) == ready_before:
                assert time.monotonic() < deadline, second_log.read_text()
                time.sleep(0.01)
            time.sleep(0.3)
            sent = producer.stop()  # closes the connection: the second daemon sees EOF
            deadline = time.monotonic() + WAIT
            while "closed (end of stream)" not in second_log.read_text():
                assert time.monotonic() < deadline, second_log.read_text()
                time.sleep(0.01)
        finally:
            assert _stop(second) == 0
    finally:
        held.close()
        store.close()
    assert producer.error is None  # the producer's connection was never closed under it
    first_text, second_text = first_log.read_text(), second_log.read_text()
    assert "handed 1 producer connection(s) to the next process" in first_text
    assert "resumed from the previous process" in second_text
    for text in (first_text, second_text):
        assert "Traceback" not in text
        assert "dropping bad bytes" not in text  # the second process resumed at a frame start
    assert _frames_in(first_text) + _frames_in(second_text) == sent
    assert sent > 400
    assert store.stored() == []  # the ended connection left the store


def test_what_the_fd_store_hands_back_is_checked_like_any_producer_input(
    tmp_path: Path,
) -> None:
    """A stored connection for a product this daemon does not serve is closed with a warning;
    stored bytes that are not a frame are skipped by the framer like any garbage on the wire."""
    store = NotifyListener(tmp_path / "notify")
    held = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    held.bind(str(tmp_path / "hp_ph256.sock"))
    held.listen()
    stray, stray_peer = socket.socketpair()  # stored for img8, which is not configured
    kept, producer = socket.socketpair()  # stored for ph256
    saved = os.memfd_create("saved")
    os.write(saved, garbage(300) + socket_frame("ph256", 4, 0).wire)
    port = free_tcp_port()
    config = _config(tmp_path, "panoseti-daqdata", [f"127.0.0.1:{port}"])
    log = tmp_path / "daemon.log"
    fds = [
        (held.fileno(), "hashpipe"),
        (stray.fileno(), "hpconn.img8.aaaa"),
        (kept.fileno(), "hpconn.ph256.bbbb"),
        (saved, "hpdata.ph256.bbbb"),
    ]
    with log.open("wb") as out:
        proc = spawn_with_fds(
            [
                str(BIN / "panoseti-daqdata"),
                "--config",
                str(config),
                "--set",
                'daqdata.hashpipe.data_products=["ph256"]',
            ],
            fds,
            env={**_env(), **store.env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    for sock in (held, stray, kept):
        sock.close()
    os.close(saved)
    try:
        _wait_ping(f"127.0.0.1:{port}")
        stray_peer.settimeout(WAIT)
        assert stray_peer.recv(16) == b""  # closed by the daemon
        producer.sendall(socket_frame("ph256", 4, 1).wire)
        store.wait_for("FDSTOREREMOVE")
        deadline = time.monotonic() + WAIT
        while "resynchronised" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
    finally:
        producer.close()
        assert _stop(proc) == 0
        store.close()
    text = log.read_text()
    assert "dropping a stored producer connection for img8: not a configured data product" in text
    assert "uds ph256 connection #1: dropping bad bytes (bad_start)" in text
    assert _frames_in(text) == 2  # the stored frame behind the garbage, and the live one
    removed = {m["FDNAME"] for m in store.messages if m.get("FDSTOREREMOVE") == "1"}
    assert {"hpdata.ph256.bbbb", "hpconn.img8.aaaa"} <= removed
