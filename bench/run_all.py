#!/usr/bin/env python3
"""`make bench`: every DaqData performance scenario against the real daemon, in one command.

Command (from the repository root; about 5 minutes at the defaults):

    make bench                                                 # all scenarios, 5 s runs, 1 min soak
    make bench BENCH_ARGS='--seconds 10 --soak-minutes 10 --repeat 3'  # the figures the docs keep
    .venv/bin/python bench/run_all.py --only 1,4 --seconds 3   # some scenarios, shorter

Scenarios (numbers as in docs/performance.md): 1 UploadImages flat out with one snapshot client,
one image per message and batched, against the bare gRPC ceiling (bench/ceiling.py); 2 Hashpipe
sockets flat out to one every-frame client; 3 8 modules x 1 kHz img16 + ph256 to 2 every-frame
clients, run for --soak-minutes with the daemon's RSS and descriptors watched; 4 snapshot fan-out
to 20 and 100 clients at 10 Hz; 5 latency from upload to client; 6 and 7 client decode time and
bytes on the wire per pixel encoding; 8 snapshot clients at 1 ms while producers run flat out.

Each run starts its own `panoseti-daqdata` (bench/node.py) and loads it from separate processes.
First the daemon is asked which newer features it has (bench/probes.py); a run needing one it
lacks says "not available" and why. Results go to bench/results/<date>.json (git-ignored; keep
one with `git add -f`) and, as markdown, between the bench markers of docs/performance.md. The
exit status is 1 when a run failed, never because a target was not met.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import encodings, scenarios
from bench.node import running_node
from bench.options import parser
from bench.probes import probe_all
from bench.proc import REPO, git_revision, load_average, machine
from bench.report import TITLES, figures, render, update_docs

RESULTS_DIR = REPO / "bench" / "results"


def commands(argv: Sequence[str]) -> list[str]:
    """The command lines that reproduce this run, as the docs show them."""
    python = Path(sys.executable)
    shown = os.path.relpath(python, REPO) if python.is_relative_to(REPO) else str(python)
    line = shlex.join([shown, "bench/run_all.py", *argv])
    if os.environ.get("MAKELEVEL"):
        extra = f" BENCH_ARGS={shlex.quote(shlex.join(argv))}" if argv else ""
        return [f"make bench{extra}", f"# runs: {line}"]
    return [line]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    started = time.monotonic()
    now = datetime.now(UTC)
    load_start = load_average()
    results: dict[str, Any] = {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "git": git_revision(),
        "commands": commands(argv),
        "options": {
            "only": list(args.only),
            "seconds": args.seconds,
            "soak_minutes": args.soak_minutes,
            "uploaders": args.uploaders,
            "repeat": args.repeat,
        },
    }
    with running_node() as node:
        features = probe_all(node)
    results["features"] = features
    for name, feature in features.items():
        print(f"feature {name}: {'yes' if feature['available'] else 'no'} ({feature['why']})")

    runners: dict[str, Callable[[], list[scenarios.Run]]] = {
        "1": lambda: scenarios.uploads(args.seconds, features, args.uploaders, args.repeat),
        "2": lambda: scenarios.hashpipe_every_frame(args.seconds, features),
        "3": lambda: scenarios.eight_modules_1khz(args.soak_minutes, features),
        "4": lambda: scenarios.fan_out(args.seconds),
        "5": lambda: scenarios.latency(args.seconds, features),
        "8": lambda: scenarios.snapshot_under_flat_out(args.seconds),
    }
    measured: dict[str, dict[str, Any]] = {}
    failed = False
    encoded: dict[str, list[scenarios.Run]] | None = None
    for scenario in args.only:
        print(f"({scenario}) {TITLES[scenario]} ...", flush=True)
        try:
            if scenario in runners:
                runs = runners[scenario]()
            else:
                if encoded is None:
                    with running_node() as node:
                        encoded = encodings.measure(node)
                runs = encoded[scenario]
        except Exception as exc:  # noqa: BLE001 - one failed run must not lose the others' figures
            runs = [{"key": "failed", "run": TITLES[scenario], "error": repr(exc)}]
            failed = True
        measured[scenario] = {"title": TITLES[scenario], "runs": runs}
        for run in runs:
            print(f"    {run['run']}: {figures(run)}", flush=True)
    results["scenarios"] = measured
    results["load_average"] = {"start": load_start, "end": load_average()}
    results["duration_s"] = round(time.monotonic() - started)

    output = Path(args.output) if args.output else RESULTS_DIR / f"{now:%Y-%m-%dT%H%M%SZ}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=1) + "\n")
    markdown = render(results)
    print(f"\nresults: {output}\n\n{markdown}")
    if not args.no_docs:
        update_docs(Path(args.docs), markdown)
        print(f"tables written to {args.docs}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
