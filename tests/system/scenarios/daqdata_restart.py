"""`systemctl restart panoseti-daqdata` while Hashpipe writes at a high rate, non-blocking.

What must hold at every restart: the producer's connection is never closed (the fd store keeps
it), every frame that reached the socket is framed by one of the daemon processes, and the stream
resumes with newer frames. What is measured, not asserted (it depends on how fast this machine
forks a sandboxed python): the frames the producer itself dropped (EAGAIN, torn) and how long
nobody read the connection. /result/restart.json carries the figures (bench/bench_restart.py).

Parameters, optional, in /etc/panoseti-systest/restart.json: products, rate_hz, restarts.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from checklib import RESULT_DIR, check, main, sh, show, wait_for
from node import SERVICE, Feed, images, journal, pkt_num

PARAMS = Path("/etc/panoseti-systest/restart.json")
DEFAULTS: dict[str, Any] = {"products": ["img16"], "rate_hz": 1000.0, "restarts": 1}


def frames_in(pid: str) -> int | None:
    """frames_in of the uds counters a daemon process logged when it stopped."""
    total = None
    for entry in journal(f"_PID={pid}"):
        for found in re.finditer(r"counters uds: .*?\bframes_in=(\d+)", str(entry.get("MESSAGE"))):
            total = int(found.group(1))
    return total


def unread_ms(old_pid: str, new_pid: str, new_start_us: int) -> tuple[float, float] | None:
    """(ms nobody read the producers, of which ms from fork to reading) across one restart."""
    handed = next(
        (
            int(e["__MONOTONIC_TIMESTAMP"])
            for e in journal(f"_PID={old_pid}")
            if "to the next process" in str(e.get("MESSAGE"))
        ),
        None,
    )
    began = None
    for e in journal(f"_PID={new_pid}"):
        found = re.search(r"read again (\d+) ms after exec", str(e.get("MESSAGE")))
        if found:
            began = new_start_us + int(found.group(1)) * 1000
    if handed is None or began is None:
        return None
    return (began - handed) / 1000, (began - new_start_us) / 1000


def scenario() -> None:
    params = {**DEFAULTS, **(json.loads(PARAMS.read_text()) if PARAMS.exists() else {})}
    products, rate = list(params["products"]), float(params["rate_hz"])
    started = sh("systemctl", "start", SERVICE)
    check("the service starts (and its socket)", started.returncode == 0, started.stderr.strip())
    feed = Feed(products, rate_hz=rate).start()
    connected = f"{len(products)} Hashpipe connections"
    check(
        "the producer is connected",
        wait_for(lambda: connected in show(SERVICE, "StatusText"), 20) is not None,
        show(SERVICE, "StatusText"),
    )
    time.sleep(1.0)
    pids = [show(SERVICE, "MainPID")]
    restarts: list[dict[str, Any]] = []
    for n in range(int(params["restarts"])):
        before = max(pkt_num(img) for img in images(3))
        lost_before = {dp: _lost(feed.counts(dp)) for dp in products}
        t0 = time.monotonic()
        restarted = sh("systemctl", "restart", SERVICE)
        took = time.monotonic() - t0
        pids.append(show(SERVICE, "MainPID"))
        start_us = int(show(SERVICE, "ExecMainStartTimestampMonotonic") or 0)
        check(
            f"restart {n + 1}: systemctl restart returns with a new, ready daemon",
            restarted.returncode == 0
            and pids[-1] != pids[-2]
            and show(SERVICE, "ActiveState") == "active",
            f"{took:.2f} s; pid {pids[-2]} -> {pids[-1]}",
        )
        after = min(pkt_num(img) for img in images(3))
        check(
            f"restart {n + 1}: the stream resumes with newer frames",
            after > before,
            f"last pkt_num before {before}, first after {after}",
        )
        time.sleep(1.0)  # the producer's buffer drains; later drops belong to the next restart
        gap = unread_ms(pids[-2], pids[-1], start_us)
        restarts.append(
            {
                "seconds": took,
                "unread_ms": gap[0] if gap else None,
                "fork_to_read_ms": gap[1] if gap else None,
                "lost": {dp: _lost(feed.counts(dp)) - lost_before[dp] for dp in products},
            }
        )
    stats = feed.stop()
    sh("systemctl", "stop", SERVICE)  # the last process logs its counters too
    check(
        "the producer's connections were never closed",
        all(s.get("connects") == 1 and not s.get("send_errors") for s in stats.values()),
        str(stats),
    )
    framed = [frames_in(pid) for pid in pids]
    sent = sum(s.get("sent", 0) for s in stats.values())
    lost = sum(_lost(s) for s in stats.values())
    unread = ", ".join(f"{r['unread_ms']} ms unread" for r in restarts)
    check(
        "every frame that reached the sockets was framed by one of the daemons",
        None not in framed and sum(n or 0 for n in framed) == sent,
        f"frames_in {framed} vs {sent} sent; the producer dropped {lost} at {rate:g} Hz ({unread})",
    )
    (RESULT_DIR / "restart.json").write_text(
        json.dumps({"params": params, "stats": stats, "restarts": restarts}, indent=1)
    )


def _lost(counts: dict[str, int]) -> int:
    return counts.get("busy", 0) + counts.get("torn", 0)


if __name__ == "__main__":
    main(scenario)
