"""UbloxControl demo: an emulated ZED-F9T, the daemon, InitF9t, then live timing messages.

Starts the pty receiver emulator in this process and `panoseti-ubloxcontrol` as a subprocess
(`panoseti_appliance.localnode`) on a free loopback port with everything under a temporary
directory, initialises the receiver with the shipped example f9t_config, prints TIM-TP qErr and NAV-TIMEUTC lines for `--duration`
seconds, and stops everything cleanly. Exit status 0 means the whole chain worked.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from pathlib import Path

from panoseti_appliance import localnode
from panoseti_appliance._proto import ublox_control_pb2 as pb
from panoseti_appliance.ublox.client import UbloxControlClient, chip_config, load_f9t_config
from panoseti_appliance.ublox.client.display import format_line
from panoseti_appliance.ublox.emulator import F9tEmulator

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = REPO / "tests" / "data" / "f9t_config.json5"
EXAMPLE_UID = "DF03A241BC"


def run(duration: float) -> int:
    with tempfile.TemporaryDirectory(prefix="panoseti-ublox-demo-") as tmp:
        workdir = Path(tmp)
        with F9tEmulator(epoch_s=1.0, link=workdir / "ublox-f9t") as emulator:
            print(f"emulated ZED-F9T on {emulator.device_path}", flush=True)
            daemon = localnode.start_ubloxcontrol(workdir=workdir / "daemon")
            try:
                print(f"panoseti-ubloxcontrol serving on {daemon.target}", flush=True)
                cfg = chip_config(load_f9t_config(EXAMPLE_CONFIG), EXAMPLE_UID)
                cfg["device"] = emulator.device_path
                with UbloxControlClient([daemon.target]) as client:
                    reply = client.init_f9t(cfg, force_init=True)[daemon.target]
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
                rc = daemon.stop()
                if rc != 0:
                    print(daemon.log()[-4000:], file=sys.stderr)
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
