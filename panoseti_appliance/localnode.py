"""A node on this machine for notebooks and demos: the real daemons, started as subprocesses.

A notebook on a laptop has no DAQ node to talk to. `start_daqdata()` starts `panoseti-daqdata`
with its Hashpipe-socket simulator ready to be switched on by InitHpIo, `start_ubloxcontrol()`
starts `panoseti-ubloxcontrol`; both come from this environment's console scripts, listen on a
free loopback port, keep their config, sockets and log in a private temporary directory, and are
returned once they answer health SERVING. `stop()` (or the end of a with-block) sends SIGTERM
and removes the directory.

A daemon also gets SIGTERM when the thread that started it ends (Linux PR_SET_PDEATHSIG), so a
killed notebook kernel or demo leaves no orphan behind; it runs in its own session, so
interrupting a notebook cell or pressing Ctrl-C in a demo does not reach it.

    with start_daqdata(module_ids=(1, 254)) as node:
        client = DaqDataClient(hosts=[node.target])
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from panoseti_appliance.grpcstubs import health_stub

DAQDATA = "panoseti-daqdata"
UBLOXCONTROL = "panoseti-ubloxcontrol"
#: The bundled sample run's module and a second one, as `make demo` shows them.
DEFAULT_MODULE_IDS = (1, 254)
#: Simulator step period: each step sends one img16 and one ph256 frame per module.
SIMULATOR_INTERVAL_SECONDS = 0.02
#: The daemon's default hp_io interval; streams at -1 get images this often at most.
HP_IO_INTERVAL_SECONDS = 0.01
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0
PR_SET_PDEATHSIG = 1


def free_loopback_port() -> int:
    """A currently free loopback port (the daemon binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def terminate(proc: subprocess.Popen[Any], timeout: float) -> bool:
    """SIGTERM `proc` if it runs and wait for it; SIGKILL after `timeout`. Whether it was killed."""
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return True
    return False


def _dies_with_parent() -> Callable[[], None]:
    """A preexec_fn: SIGTERM to the child when the thread that started it ends.

    libc is looked up here, in the parent, so that the child between fork and exec only makes
    the one system call.
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return arm


class LocalDaemon:
    """One daemon started by this process, reachable at `target` (`127.0.0.1:PORT`)."""

    def __init__(
        self,
        console_script: str,
        target: str,
        settings: Mapping[str, str],
        workdir: Path,
        *,
        owns_workdir: bool,
    ) -> None:
        self.name = console_script
        self.target = target
        self.workdir = workdir
        self.log_path = workdir / f"{console_script}.log"
        self._owns_workdir = owns_workdir
        self._final_log: str | None = None
        config = workdir / f"{console_script}.yaml"
        config.write_text("# every setting comes from PANOSETI_* environment variables\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PANOSETI_")}
        env.update(settings)
        env["PYTHONUNBUFFERED"] = "1"
        exe = Path(sys.executable).parent / console_script
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(exe), "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=workdir,
                start_new_session=True,
                preexec_fn=_dies_with_parent(),
            )

    def __enter__(self) -> LocalDaemon:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def log(self) -> str:
        """What the daemon has logged so far (kept after `stop()` removed its directory)."""
        if self._final_log is not None:
            return self._final_log
        return self.log_path.read_text(errors="replace")

    def wait_serving(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Return once grpc.health.v1 says SERVING; raise if the daemon exits or is late."""
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.target) as channel:
            health = health_stub(channel)
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.proc.returncode} while starting; its "
                        f"log:\n{self.log()[-4000:]}"
                    )
                try:
                    reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.name} was not SERVING within {timeout:g} s")
                time.sleep(0.1)

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """SIGTERM, wait (SIGKILL after `timeout`), remove the directory it made; the exit code."""
        terminate(self.proc, timeout)
        if self._final_log is None and self.log_path.exists():
            self._final_log = self.log_path.read_text(errors="replace")
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return int(self.proc.returncode)


def _start(
    console_script: str,
    settings: Callable[[Path, int], Mapping[str, str]],
    workdir: Path | None,
    timeout: float,
) -> LocalDaemon:
    port = free_loopback_port()
    owned = workdir is None
    where = Path(tempfile.mkdtemp(prefix=f"{console_script}-")) if workdir is None else workdir
    where.mkdir(parents=True, exist_ok=True)
    daemon = LocalDaemon(
        console_script, f"127.0.0.1:{port}", settings(where, port), where, owns_workdir=owned
    )
    try:
        daemon.wait_serving(timeout)
    except BaseException:
        daemon.stop()
        raise
    return daemon


def daqdata_settings(
    workdir: Path, port: int, module_ids: Iterable[int], simulator_interval: float
) -> dict[str, str]:
    """PANOSETI_* variables: loopback port and unix socket, Hashpipe simulator, all under workdir."""
    return {
        "PANOSETI_DAQDATA__LISTEN": f'["127.0.0.1:{port}", "unix://{workdir}/daqdata.sock"]',
        "PANOSETI_DAQDATA__HASHPIPE__SOCKET_TEMPLATE": f"{workdir}/hashpipe_grpc.dp_{{dp}}.sock",
        "PANOSETI_DAQDATA__SIMULATOR__MODE": "uds",
        "PANOSETI_DAQDATA__SIMULATOR__MODULE_IDS": str(list(module_ids)),
        "PANOSETI_DAQDATA__SIMULATOR__UPDATE_INTERVAL_SECONDS": str(simulator_interval),
        "PANOSETI_DAQDATA__SIMULATOR__SIM_DATA_DIR": str(workdir / "sim"),
        "PANOSETI_HP_IO__DATA_DIR": str(workdir),
        "PANOSETI_HP_IO__UPDATE_INTERVAL_SECONDS": str(HP_IO_INTERVAL_SECONDS),
        "PANOSETI_LOGGING__TARGET": "stderr",
    }


def start_daqdata(
    module_ids: Iterable[int] = DEFAULT_MODULE_IDS,
    *,
    simulator_interval: float = SIMULATOR_INTERVAL_SECONDS,
    workdir: Path | None = None,
    timeout: float = START_TIMEOUT_SECONDS,
) -> LocalDaemon:
    """`panoseti-daqdata` whose simulator (started by InitHpIo with simulate_daq, e.g.
    `client.init_sim(...)`) replays the bundled sample run as `module_ids` over the Hashpipe
    sockets."""
    modules = list(module_ids)
    return _start(
        DAQDATA,
        lambda where, port: daqdata_settings(where, port, modules, simulator_interval),
        workdir,
        timeout,
    )


def start_ubloxcontrol(
    *, workdir: Path | None = None, timeout: float = START_TIMEOUT_SECONDS
) -> LocalDaemon:
    """`panoseti-ubloxcontrol` with no receiver yet: InitF9t names the device to open."""
    return _start(
        UBLOXCONTROL,
        lambda where, port: {
            "PANOSETI_UBLOX__LISTEN": f'["127.0.0.1:{port}"]',
            "PANOSETI_LOGGING__LEVEL": "warning",
            "PANOSETI_LOGGING__TARGET": "stderr",
        },
        workdir,
        timeout,
    )
