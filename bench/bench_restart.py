#!/usr/bin/env python3
"""Frames a Hashpipe producer loses across `systemctl restart panoseti-daqdata`, under a real systemd.

    sudo .venv/bin/python bench/bench_restart.py                 # the default cases, 5 restarts each
    sudo .venv/bin/python bench/bench_restart.py --restarts 10 --case img16@1000

Each case boots the node (the system tests' Debian container, tests/system) and runs the restart
scenario there: the installed units, the daemon started by systemd, and Hashpipe's behaviour
emulated by the appliance's own emitter (one non-blocking sendmsg per frame; EAGAIN drops the
frame, a short write tears it). Per restart it reports how long `systemctl restart` took, how long
nobody read the producer's connection (from the old process's hand-over to the new one reading it
again, of which from fork to reading), and the frames the producer dropped. The baseline case runs
the same daemon without the fd store (FileDescriptorStoreMax=0), i.e. with its connections closed
at every restart, as before.

Needs root (systemd-nspawn); the first run builds the cached root (about 2 minutes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.system.harness import require, rootfs, wheels  # noqa: E402
from tests.system.harness.container import PAYLOAD_DIR, boot  # noqa: E402

SCENARIO = REPO / "tests/system/scenarios/daqdata_restart.py"
NODE = REPO / "tests/system/payload/node.py"
NO_FD_STORE = b"[Service]\nFileDescriptorStoreMax=0\n"
CASES = ["img16@1000", "ph256@1000", "img16@100", "img16@1000:nostore"]


def run_case(node: rootfs.Node, case: str, restarts: int) -> dict[str, Any]:
    spec, _, variant = case.partition(":")
    product, _, rate = spec.partition("@")
    params = {"products": [product], "rate_hz": float(rate), "restarts": restarts}
    files: dict[str, bytes | Path] = {
        f"{PAYLOAD_DIR}/node.py": NODE,
        "/etc/panoseti-systest/restart.json": json.dumps(params).encode(),
    }
    if variant == "nostore":
        files["/etc/systemd/system/panoseti-daqdata.service.d/bench.conf"] = NO_FD_STORE
    result = boot(node, SCENARIO, files=files, timeout=120 + 10 * restarts)
    figures = result.run_dir / "result" / "restart.json"
    if not figures.exists():
        raise SystemExit(f"{case}: the scenario left no figures\n{result.console[-3000:]}")
    data: dict[str, Any] = json.loads(figures.read_text())
    data["case"] = case
    data["passed"] = result.returncode == 0
    return data


def report(data: dict[str, Any]) -> str:
    runs = data["restarts"]
    product = data["params"]["products"][0]
    lost = [r["lost"][product] for r in runs]
    unread = [r["unread_ms"] for r in runs if r["unread_ms"] is not None]
    fork = [r["fork_to_read_ms"] for r in runs if r["fork_to_read_ms"] is not None]
    took = [r["seconds"] for r in runs]

    def span(values: list[float]) -> str:
        return f"{min(values):.0f}–{max(values):.0f} ms" if values else "– (connections closed)"

    note = "" if data["passed"] or data["case"].endswith(":nostore") else " (checks failed!)"
    return (
        f"| {data['case']} | {statistics.median(took):.2f} s | {span(unread)} | {span(fork)} | "
        f"{', '.join(map(str, lost))} | {statistics.mean(lost):.0f}{note} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--case", action="append", help=f"PRODUCT@HZ[:nostore] (default {CASES})")
    args = parser.parse_args()
    require()
    scratch = Path(tempfile.mkdtemp(prefix="bench-restart-"))
    house = wheels.wheelhouse(REPO / "pyproject.toml")
    node = rootfs.prepare_node(house, wheels.project_wheel(REPO, scratch / "wheel"), scratch)
    print(
        "| case (product@Hz) | restart took (median) | nobody read the producer | of which fork "
        "to reading | frames lost, each restart | mean |"
    )
    print("|---|---|---|---|---|---|")
    for case in args.case or CASES:
        print(report(run_case(node, case, args.restarts)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
