"""Start the appliance's daemons as real subprocesses for tests (docs/development.md, "Tests").

Each daemon gets an empty config file plus PANOSETI_* environment overrides (ephemeral loopback
port, sockets and data under the test's tmp dir), and is considered up when grpc.health.v1 says
SERVING. On stop it gets SIGTERM; a daemon that does not exit cleanly, or that logged a
traceback, fails the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from panoseti_appliance.grpcstubs import health_stub
from panoseti_appliance.localnode import free_loopback_port, terminate

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
#: The tests' name for it.
free_tcp_port = free_loopback_port


def env_overrides(settings: Mapping[str, Any], prefix: str = "PANOSETI") -> dict[str, str]:
    """Flatten nested settings into PANOSETI_<SECTION>__<FIELD> variables (JSON for non-strings)."""
    out: dict[str, str] = {}
    for key, value in settings.items():
        name = f"{prefix}_{key.upper()}" if prefix == "PANOSETI" else f"{prefix}__{key.upper()}"
        if isinstance(value, Mapping):
            out.update(env_overrides(value, name))
        else:
            out[name] = value if isinstance(value, str) else json.dumps(value)
    return out


def clean_environ(*drop: str, **extra: str) -> dict[str, str]:
    """This process's environment without any PANOSETI_* setting and the variables `drop`, plus
    `extra`: what a command under test sees, whatever the shell that ran pytest had set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANOSETI_") and k not in drop}
    env.update(extra)
    return env


def rpc_details(err: grpc.RpcError) -> str:
    """The details of a failed call, which every error status the daemons send carries."""
    details = err.details()
    assert details is not None, f"{err.code()} without details"
    return details


@dataclass
class Daemon:
    """A running daemon subprocess and where to reach it."""

    name: str
    proc: subprocess.Popen[bytes]
    target: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.target)

    @property
    def unix_target(self) -> str:
        """Its unix:// listen address, for daemons whose settings give one beside the TCP port."""
        (target,) = [
            address
            for name, value in self.env.items()
            if name.startswith("PANOSETI_") and name.endswith("__LISTEN")
            for address in json.loads(value)
            if address.startswith("unix://")
        ]
        return str(target)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def health(self, service: str = "", timeout: float = 2.0) -> int:
        with self.channel() as ch:
            stub = health_stub(ch)
            resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
            return int(resp.status)

    def wait_serving(self, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode} during start-up:\n{self.log()}"
                )
            try:
                if self.health() == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError as exc:
                last = exc
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not SERVING after {timeout}s ({last}):\n{self.log()}")

    def wait_answering(self, timeout: float = STARTUP_TIMEOUT) -> int:
        """Wait until the daemon answers health checks at all; its overall status then."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode} during start-up:\n{self.log()}"
                )
            try:
                return self.health()
            except grpc.RpcError:
                time.sleep(0.1)
        raise TimeoutError(f"{self.name} not answering after {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = STOP_TIMEOUT, check: bool = True) -> int:
        """SIGTERM and wait; with check, fail on a non-zero exit or a logged traceback."""
        if terminate(self.proc, timeout) and check:
            raise AssertionError(
                f"{self.name} did not exit within {timeout}s of SIGTERM:\n{self.log()}"
            )
        rc = self.proc.returncode
        if check:
            log = self.log()
            assert rc == 0, f"{self.name} exited with {rc}:\n{log}"
            assert "Traceback" not in log, f"{self.name} logged a traceback:\n{log}"
        return rc


#: Where the tests' DaqData daemons let InitHpIo point data_dir unless a test says otherwise:
#: any temporary directory (pytest's tmp_path included) and the default run directory.
TEST_DATA_ROOTS = [tempfile.gettempdir(), "/mnt/panoseti"]


def with_test_data_roots(console_script: str, settings: Mapping[str, Any]) -> Mapping[str, Any]:
    """`settings`, for panoseti-daqdata with daqdata.allowed_data_roots = TEST_DATA_ROOTS unless
    they set it."""
    daqdata = settings.get("daqdata", {})
    if console_script != "panoseti-daqdata" or "allowed_data_roots" in daqdata:
        return settings
    return {**settings, "daqdata": {**daqdata, "allowed_data_roots": TEST_DATA_ROOTS}}


def start_daemon(
    console_script: str,
    tmp_path: Path,
    settings: Mapping[str, Any],
    target: str,
    extra_env: Mapping[str, str] | None = None,
    config_text: str = "",
    wait: bool = True,
    prefix: Sequence[str] = (),
) -> Daemon:
    """Start `console_script --config <empty file>` with settings given as environment overrides
    (after `prefix`, a command that runs it elsewhere, such as `ip netns exec NAME`)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / f"{console_script}.yaml"
    config.write_text(config_text)
    log_path = tmp_path / f"{console_script}.log"
    env = clean_environ(
        **env_overrides(with_test_data_roots(console_script, settings)), PYTHONUNBUFFERED="1"
    )
    env.update(extra_env or {})
    exe = Path(sys.executable).parent / console_script
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*prefix, str(exe), "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    daemon = Daemon(console_script, proc, target, log_path, env)
    if wait:
        try:
            daemon.wait_serving()
        except BaseException:
            daemon.stop(check=False)
            raise
    return daemon


@contextlib.contextmanager
def running_daemon(*args: Any, **kwargs: Any) -> Iterator[Daemon]:
    daemon = start_daemon(*args, **kwargs)
    try:
        yield daemon
    finally:
        daemon.stop()


def kill(daemon: Daemon) -> int:
    """SIGKILL the daemon and reap it: no shutdown, its sockets and files left behind as a crash
    or power cut leaves them. Its exit status (-9)."""
    daemon.proc.kill()
    return daemon.proc.wait()
