#!/usr/bin/env python3
"""`make demo`: a DaqData node on the bundled sample run, watched live by the client.

1. Prints a short summary of the sample run bundled in the package (PFF files, frames, times).
2. Starts `panoseti-daqdata` as a subprocess with everything in a temporary directory (config,
   gRPC unix socket, Hashpipe socket paths) on a free loopback port.
3. Calls InitHpIo with simulate_daq through the client, which starts the Hashpipe emulator (the
   `uds` simulator) inside the daemon for modules 1 and 254, restamping frames to "now".
4. Streams every image for --duration seconds, feeding PanoImagePreviewer and
   PulseHeightDistribution, then writes demo-output/preview.png and demo-output/phdist.png.
5. Prints images/s received and the client's parsing cost, and stops the daemon cleanly, also on
   Ctrl-C or an error (the daemon also dies with this process: no orphans).

    .venv/bin/python tools/demo.py --duration 10 [--out DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from panoseti_appliance import pff, sample_data
from panoseti_appliance.cli.daq import dp_name, stop_on_signals
from panoseti_appliance.daqdata.client import DaqDataClient
from panoseti_appliance.daqdata.parse import parse_response
from panoseti_appliance.daqdata.plot import PanoImagePreviewer, PulseHeightDistribution

REPO = Path(__file__).resolve().parent.parent
MODULES = (1, 254)
#: Simulator step period: each step sends one img16 and one ph256 frame per module.
SIM_INTERVAL_SECONDS = 0.02
#: hp_io interval; streams at -1 get images this often at most.
HP_IO_INTERVAL_SECONDS = 0.01
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0
PR_SET_PDEATHSIG = 1

console = Console(soft_wrap=True, highlight=False)


def pff_summary() -> None:
    """A few lines about each bundled sample file."""
    console.print(f"[bold]Bundled sample run[/] ({sample_data.SAMPLE_DIR})")
    for dp, path in sorted(sample_data.sample_files().items()):
        frames = list(pff.iter_frames(path))
        times = [pff.header_time_fields(f.header) for f in frames]
        secs = [t["tv_sec"] + t["tv_usec"] / 1e6 for t in times if t is not None]
        span = ""
        if secs:
            first = datetime.fromtimestamp(min(secs), UTC).strftime("%Y-%m-%d %H:%M:%S")
            span = f", host time {first} UTC + {max(secs) - min(secs):.1f} s"
        console.print(f"  {dp:6} {path.name}: {len(frames)} frames of {frames[0].size} B{span}")


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the daemon child: receive SIGTERM when the demo process dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@contextlib.contextmanager
def daqdata_daemon(workdir: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """panoseti-daqdata configured through PANOSETI_* variables, stopped with SIGTERM."""
    config = workdir / "panoseti.yaml"
    config.write_text("# demo: every setting comes from PANOSETI_* environment variables\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANOSETI_")}
    env.update(
        {
            "PANOSETI_DAQDATA__LISTEN": f'["127.0.0.1:{port}", "unix://{workdir}/daqdata.sock"]',
            "PANOSETI_DAQDATA__HASHPIPE__SOCKET_TEMPLATE": f"{workdir}/hashpipe_grpc.dp_{{dp}}.sock",
            "PANOSETI_DAQDATA__SIMULATOR__MODE": "uds",
            "PANOSETI_DAQDATA__SIMULATOR__MODULE_IDS": str(list(MODULES)),
            "PANOSETI_DAQDATA__SIMULATOR__UPDATE_INTERVAL_SECONDS": str(SIM_INTERVAL_SECONDS),
            "PANOSETI_DAQDATA__SIMULATOR__SIM_DATA_DIR": str(workdir / "sim"),
            "PANOSETI_HP_IO__DATA_DIR": str(workdir),
            "PANOSETI_HP_IO__UPDATE_INTERVAL_SECONDS": str(HP_IO_INTERVAL_SECONDS),
            "PANOSETI_LOGGING__TARGET": "stderr",
            "PYTHONUNBUFFERED": "1",
        }
    )
    exe = Path(sys.executable).parent / "panoseti-daqdata"
    log = (workdir / "daqdata.log").open("wb")
    proc = subprocess.Popen(
        [str(exe), "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=workdir,
        start_new_session=True,  # Ctrl-C reaches the demo only; it stops the daemon itself
        preexec_fn=_die_with_parent,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        if proc.returncode == 0:
            console.print("daemon stopped cleanly")
        else:
            console.print(f"[red]daemon exited with {proc.returncode}[/]; its log:")
            console.print((workdir / "daqdata.log").read_text(errors="replace")[-4000:])


def wait_for_server(
    client: DaqDataClient, target: str, proc: subprocess.Popen[bytes], stop: threading.Event
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not client.is_daq_host_valid(target):
        if proc.poll() is not None:
            raise RuntimeError(f"panoseti-daqdata exited with {proc.returncode} while starting")
        if stop.is_set() or time.monotonic() > deadline:
            raise RuntimeError(
                f"panoseti-daqdata did not answer Ping within {START_TIMEOUT_SECONDS:.0f} s"
            )
        time.sleep(0.1)


def watch(client: DaqDataClient, duration: float, stop: threading.Event, out: Path) -> None:
    """Stream everything for `duration` seconds into both plots; report rates; write PNGs."""
    previewer = PanoImagePreviewer(plot_update_interval=duration + 60)
    # Short tumbling windows, and one longer than the demo holding the whole run.
    phdist = PulseHeightDistribution((1, 3, duration + 5), plot_update_interval=duration + 60)
    counts: Counter[str] = Counter()
    parse_ns = 0
    timer = threading.Timer(duration, stop.set)
    timer.daemon = True
    started = time.monotonic()
    timer.start()
    try:
        with console.status(f"streaming for {duration:g} s…"):
            for response in client.stream_images(
                None, True, True, -1, parse_pano_images=False, stop_event=stop
            ):
                t0 = time.thread_time_ns()  # CPU of this thread: excludes GIL waits
                parsed = parse_response(response)
                parse_ns += time.thread_time_ns() - t0
                counts[dp_name(parsed)] += 1
                previewer.update(parsed)
                phdist.update(parsed)
    finally:
        timer.cancel()
    elapsed = time.monotonic() - started
    total = sum(counts.values())
    per_dp = ", ".join(f"{dp}: {n}" for dp, n in sorted(counts.items()))
    console.print(
        f"received {total} images in {elapsed:.1f} s = {total / elapsed:.1f} images/s ({per_dp}); "
        f"client parsing (CPU) {parse_ns / max(total, 1) / 1000:.1f} µs per image"
    )
    if not total:
        raise RuntimeError("no images arrived; see the daemon log")
    for name, plot in (("preview.png", previewer), ("phdist.png", phdist)):
        console.print(f"wrote {plot.save_png(out / name)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds to stream")
    parser.add_argument("--out", type=Path, default=REPO / "demo-output", help="where the PNGs go")
    args = parser.parse_args()
    out = args.out.absolute()
    stop = threading.Event()
    pff_summary()
    with (
        stop_on_signals(stop),
        tempfile.TemporaryDirectory(prefix="panoseti-demo-") as tmp,
    ):
        workdir = Path(tmp)
        port = free_loopback_port()
        target = f"127.0.0.1:{port}"
        console.print(
            f"[bold]Starting panoseti-daqdata[/] on {target} (work dir {workdir}); "
            f"Hashpipe emulator for modules {', '.join(map(str, MODULES))}"
        )
        try:
            with daqdata_daemon(workdir, port) as proc, DaqDataClient(hosts=[target]) as client:
                with console.status("waiting for the daemon…"):
                    wait_for_server(client, target, proc, stop)
                sim_cfg = {"update_interval_seconds": HP_IO_INTERVAL_SECONDS, "force": True}
                if not client.init_sim(None, sim_cfg):
                    raise RuntimeError("InitHpIo(simulate_daq) failed; see the messages above")
                watch(client, args.duration, stop, out)
        except Exception as exc:
            console.print(f"[red]demo failed:[/] {exc}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
