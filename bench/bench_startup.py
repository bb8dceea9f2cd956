#!/usr/bin/env python3
"""How fast each daemon serves: from exec to READY=1, without systemd.

    .venv/bin/python bench/bench_startup.py              # 10 starts of each daemon
    .venv/bin/python bench/bench_startup.py --runs 30

Each start runs the daemon with an empty configuration (loopback port, sockets in a temporary
directory) and NOTIFY_SOCKET pointing at a datagram socket here; the time is from spawning the
process to its READY=1 (sent once it serves and, for DaqData, the boot-time hp_io start is over),
then it is stopped with SIGTERM. Median and range over the runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_start(daemon: str, work: Path) -> float:
    notify_path = work / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(60)
        section = "daqdata" if daemon == "panoseti-daqdata" else "ublox"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PANOSETI_")}
        env.update(
            {
                "NOTIFY_SOCKET": str(notify_path),
                f"PANOSETI_{section.upper()}__LISTEN": f'["127.0.0.1:{free_port()}"]',
                "PANOSETI_DAQDATA__HASHPIPE__SOCKET_TEMPLATE": str(work / "hp_{dp}.sock"),
                "PANOSETI_LOGGING__LEVEL": "warning",
            }
        )
        config = work / "empty.yaml"
        config.write_text("")
        t0 = time.monotonic()
        proc = subprocess.Popen([str(BIN / daemon), "--config", str(config)], env=env)
        while b"READY=1" not in notify.recv(4096):
            pass
        took = time.monotonic() - t0
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        notify_path.unlink()
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    for daemon in ("panoseti-daqdata", "panoseti-ubloxcontrol"):
        with tempfile.TemporaryDirectory() as tmp:
            times = [one_start(daemon, Path(tmp)) for _ in range(args.runs)]
        print(
            f"{daemon}: exec to READY=1 median {statistics.median(times) * 1000:.0f} ms "
            f"(range {min(times) * 1000:.0f}–{max(times) * 1000:.0f} ms, {args.runs} runs)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
