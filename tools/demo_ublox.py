"""UbloxControl demo: an emulated ZED-F9T, the daemon, InitF9t, then live timing messages.

Starts the pty receiver emulator in this process and `panoseti-ubloxcontrol` as a subprocess on
a free loopback port with everything under a temporary directory, initialises the receiver with
the shipped example f9t_config, prints TIM-TP qErr and NAV-TIMEUTC lines for `--duration`
seconds, and stops everything cleanly. Exit status 0 means the whole chain worked.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from panoseti_appliance._proto import ublox_control_pb2 as pb
from panoseti_appliance.ublox.client import UbloxControlClient, chip_config, load_f9t_config
from panoseti_appliance.ublox.display import format_line
from panoseti_appliance.ublox.emulator import F9tEmulator

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = REPO / "tests" / "data" / "f9t_config.json5"
EXAMPLE_UID = "DF03A241BC"
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_serving(target: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll grpc health until SERVING; fail early if the daemon exits."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"panoseti-ubloxcontrol exited with {proc.returncode}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise TimeoutError(f"panoseti-ubloxcontrol not SERVING within {timeout:g} s")


def start_daemon(workdir: Path, target: str) -> subprocess.Popen[bytes]:
    config = workdir / "panoseti.yaml"
    config.write_text(f'ublox:\n  listen: ["{target}"]\nlogging:\n  level: warning\n')
    exe = Path(sys.executable).parent / "panoseti-ubloxcontrol"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANOSETI_")}
    return subprocess.Popen([str(exe), "--config", str(config)], env=env, cwd=workdir)


def stop_daemon(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return 1
    return int(proc.returncode)


def run(duration: float) -> int:
    with tempfile.TemporaryDirectory(prefix="panoseti-ublox-demo-") as tmp:
        workdir = Path(tmp)
        target = f"127.0.0.1:{free_port()}"
        with F9tEmulator(epoch_s=1.0, link=workdir / "ublox-f9t") as emulator:
            print(f"emulated ZED-F9T on {emulator.device_path}", flush=True)
            daemon = start_daemon(workdir, target)
            try:
                wait_serving(target, daemon, START_TIMEOUT_S)
                print(f"panoseti-ubloxcontrol serving on {target}", flush=True)
                cfg = chip_config(load_f9t_config(EXAMPLE_CONFIG), EXAMPLE_UID)
                cfg["device"] = emulator.device_path
                with UbloxControlClient([target]) as client:
                    reply = client.init_f9t(cfg, force_init=True)[target]
                    status = pb.InitF9tResponse.InitStatus.Name(reply.init_status)
                    print(f"InitF9t: {status}: {reply.message}", flush=True)
                    if reply.init_status != pb.InitF9tResponse.SUCCESS:
                        return 1
                    stop = threading.Event()
                    timer = threading.Timer(duration, stop.set)
                    timer.start()
                    count = 0
                    for item in client.capture(["TIM-TP", "NAV-TIMEUTC"], stop_event=stop):
                        print(format_line("demo", item.response), flush=True)
                        count += 1
                    timer.cancel()
                print(f"{count} messages in {duration:g} s", flush=True)
                if count == 0:
                    return 1
            finally:
                rc = stop_daemon(daemon)
            if rc != 0:
                print(f"panoseti-ubloxcontrol exited with {rc}", file=sys.stderr)
                return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration", type=float, default=5.0, help="seconds of capture (default 5)"
    )
    args = parser.parse_args()
    return run(args.duration)


if __name__ == "__main__":
    sys.exit(main())
