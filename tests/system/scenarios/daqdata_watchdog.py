"""The watchdog and Restart=on-failure: a stopped daemon is killed and restarted within
2 × WatchdogSec, a crashed one is restarted, and the Hashpipe producer stays connected through both
(after a crash the new process starts reading mid-frame and resynchronises)."""

from __future__ import annotations

import os
import re
import signal
import time

from checklib import check, main, sh, show, wait_for
from node import SERVICE, Feed, images, messages


def seconds(span: str) -> float:
    """A systemd time span as `systemctl show` prints it ("5s", "500ms", "1min 30s")."""
    units = {"min": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)(min|ms|us|s)", span))


def restarted_from(pid: str, timeout: float) -> float | None:
    """Seconds until the service is active again with a main PID other than `pid`."""

    def again() -> bool:
        return show(SERVICE, "ActiveState") == "active" and show(SERVICE, "MainPID") not in (
            pid,
            "0",
        )

    return wait_for(again, timeout=timeout, interval=0.05)


def scenario() -> None:
    started = sh("systemctl", "start", SERVICE)
    check("the service starts", started.returncode == 0, started.stderr.strip())
    watchdog_s = seconds(show(SERVICE, "WatchdogUSec"))
    check("WatchdogSec is set", watchdog_s > 0, f"{watchdog_s:g} s")
    feed = Feed(["ph256"], rate_hz=100).start()
    wait_for(lambda: "1 Hashpipe connections" in show(SERVICE, "StatusText"), 20)
    time.sleep(watchdog_s)  # a healthy daemon outlives its watchdog period
    check("a healthy daemon is not restarted", show(SERVICE, "NRestarts") == "0")

    pid = show(SERVICE, "MainPID")
    os.kill(int(pid), signal.SIGSTOP)  # a blocked event loop sends no more pings
    took = restarted_from(pid, timeout=4 * watchdog_s)
    check(
        "SIGSTOP: killed by the watchdog and restarted within 2 × WatchdogSec",
        took is not None and took <= 2 * watchdog_s,
        f"restarted after {took:.2f} s" if took is not None else "not restarted",
    )
    said = list(messages(f"UNIT={SERVICE}"))
    check(
        "systemd says why",
        any("Watchdog timeout" in m for m in said)
        and any("Failed with result 'watchdog'" in m for m in said),
        "; ".join(m for m in said if "atchdog" in m),
    )
    check("NRestarts counts it", show(SERVICE, "NRestarts") == "1", show(SERVICE, "NRestarts"))

    pid = show(SERVICE, "MainPID")
    os.kill(int(pid), signal.SIGSEGV)  # a crash
    took = restarted_from(pid, timeout=30)
    check(
        "a crash is restarted (Restart=on-failure)",
        took is not None and show(SERVICE, "NRestarts") == "2",
        f"after {took:.2f} s, NRestarts {show(SERVICE, 'NRestarts')}"
        if took is not None
        else "not restarted",
    )
    got = images(5)
    check("the stream works after both", len(got) == 5 and got[0].module_id == 7)
    stored = show(SERVICE, "NFileDescriptorStore")
    stats = feed.stop()["ph256"]
    check(
        "the producer stayed connected through both kills (fd store)",
        stats.get("connects") == 1 and not stats.get("send_errors") and stored == "1",
        f"{stats}; NFileDescriptorStore {stored}",
    )
    feed = Feed(["ph256"], rate_hz=100).start()
    wait_for(lambda: show(SERVICE, "NFileDescriptorStore") == "1", 20)
    sh("systemctl", "stop", SERVICE)
    check(
        "systemctl stop empties the store: the connection closes",
        show(SERVICE, "NFileDescriptorStore") == "0",
        f"NFileDescriptorStore {show(SERVICE, 'NFileDescriptorStore')} after stop",
    )
    feed.stop()


if __name__ == "__main__":
    main(scenario)
