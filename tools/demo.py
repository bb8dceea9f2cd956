#!/usr/bin/env python3
"""`make demo`: a DaqData node on the bundled sample run, watched live by the client.

1. Prints a short summary of the sample run bundled in the package (PFF files, frames, times).
2. Starts `panoseti-daqdata` as a subprocess (`panoseti_appliance.localnode`) with everything in
   a temporary directory (config, gRPC unix socket, Hashpipe socket paths) on a free loopback
   port.
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
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from panoseti_appliance import localnode, pff, sample_data
from panoseti_appliance.cli.daq import dp_name, stop_on_signals
from panoseti_appliance.daqdata.client import DaqDataClient
from panoseti_appliance.daqdata.client.parse import parse_response
from panoseti_appliance.daqdata.client.plot import PanoImagePreviewer, PulseHeightDistribution

REPO = Path(__file__).resolve().parent.parent
MODULES = localnode.DEFAULT_MODULE_IDS
SIM_INTERVAL_SECONDS = localnode.SIMULATOR_INTERVAL_SECONDS
HP_IO_INTERVAL_SECONDS = localnode.HP_IO_INTERVAL_SECONDS

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
    modules = ", ".join(map(str, MODULES))
    console.print(
        f"[bold]Starting panoseti-daqdata[/] with the Hashpipe emulator for modules {modules}"
    )
    with stop_on_signals(stop):
        try:
            with console.status("waiting for the daemon…"):
                node = localnode.start_daqdata(MODULES, simulator_interval=SIM_INTERVAL_SECONDS)
        except (RuntimeError, TimeoutError) as exc:
            console.print(f"[red]demo failed:[/] {exc}")
            return 1
        console.print(f"panoseti-daqdata serving on {node.target} (work dir {node.workdir})")
        failed = False
        try:
            with DaqDataClient(hosts=[node.target]) as client:
                sim_cfg = {"update_interval_seconds": HP_IO_INTERVAL_SECONDS, "force": True}
                if not client.init_sim(None, sim_cfg):
                    raise RuntimeError("InitHpIo(simulate_daq) failed; see the messages above")
                watch(client, args.duration, stop, out)
        except Exception as exc:  # noqa: BLE001 - top level: report, then still show the daemon's log
            console.print(f"[red]demo failed:[/] {exc}")
            failed = True
        finally:
            rc = node.stop()
    if rc == 0:
        console.print("daemon stopped cleanly")
    else:
        console.print(f"[red]daemon exited with {rc}[/]; its log:")
        console.print(node.log()[-4000:])
    return 1 if failed or rc != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
