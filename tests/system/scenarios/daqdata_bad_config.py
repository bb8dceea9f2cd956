"""A broken configuration: exit 78, no restart loop, what it does to the Hashpipe sockets, and
the recovery docs/operations.md gives an operator."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from checklib import check, main, sh, show, wait_for
from node import HASHPIPE_TEMPLATE, SERVICE, SOCKET, Feed, journal

CONFIG = Path("/etc/panoseti/panoseti.yaml")
BROKEN = "daqdata:\n  max_concurrent_rpcs: 0\n"


def scenario() -> None:
    CONFIG.parent.mkdir(exist_ok=True)
    CONFIG.write_text(BROKEN)
    sh("systemctl", "start", SOCKET)
    started = sh("systemctl", "start", SERVICE)
    check("starting the service fails", started.returncode != 0, started.stderr.strip())
    state = (show(SERVICE, "ActiveState"), show(SERVICE, "Result"), show(SERVICE, "ExecMainStatus"))
    check("it failed with exit status 78", state == ("failed", "exit-code", "78"), state)
    time.sleep(2)
    check(
        "and is not restarted (RestartPreventExitStatus=78)",
        show(SERVICE, "NRestarts") == "0" and show(SERVICE, "ActiveState") == "failed",
        f"NRestarts {show(SERVICE, 'NRestarts')}, {show(SERVICE, 'ActiveState')}",
    )
    errors = [
        e
        for e in journal(f"_SYSTEMD_UNIT={SERVICE}", "PRIORITY=3")
        if "invalid configuration" in str(e.get("MESSAGE"))
    ]
    check(
        "the journal has the problems at error priority, as `panoseti config check` says them",
        errors
        and "daqdata.max_concurrent_rpcs" in str(errors[0].get("MESSAGE"))
        and errors[0].get("SYSLOG_IDENTIFIER") == "panoseti-daqdata",
        str(errors[0].get("MESSAGE")) if errors else "no entry",
    )

    # A producer's connection triggers the service again and again, up to the start limit; then
    # systemd takes the Hashpipe sockets down with it, so producers see a refusal, not a sink.
    feed = Feed(["ph256"], rate_hz=50).start()
    took = wait_for(lambda: show(SOCKET, "ActiveState") == "failed", timeout=60)
    attempts = sum(
        1
        for e in journal(f"UNIT={SERVICE}")
        if "Failed with result 'exit-code'" in str(e.get("MESSAGE"))
    )
    check(
        "socket activation retries at most StartLimitBurst times, then the socket unit fails",
        took is not None and show(SOCKET, "Result") == "service-start-limit-hit" and attempts <= 6,
        f"after {took} s: {show(SOCKET, 'Result')}; {attempts} failed starts",
    )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(HASHPIPE_TEMPLATE.format(dp="ph256"))
            refused = "connected"
        except OSError as exc:
            refused = exc.strerror or str(exc)
    check("producers are refused meanwhile", refused != "connected", refused)

    # The recovery in docs/operations.md.
    CONFIG.write_text("daqdata:\n  max_concurrent_rpcs: 50\n")
    checked = sh("/opt/panoseti/venv/bin/panoseti", "config", "check")
    check("panoseti config check accepts the fix", checked.returncode == 0, checked.stderr.strip())
    reset = sh("systemctl", "reset-failed", SERVICE, SOCKET)
    restarted = sh("systemctl", "start", SOCKET, SERVICE)
    check(
        "reset-failed, then start socket and service: active again",
        reset.returncode == 0
        and restarted.returncode == 0
        and show(SERVICE, "ActiveState") == "active",
        restarted.stderr.strip(),
    )
    took = wait_for(lambda: "1 Hashpipe connections" in show(SERVICE, "StatusText"), timeout=30)
    check(
        "Hashpipe reconnects by itself and frames flow",
        took is not None,
        show(SERVICE, "StatusText"),
    )
    feed.stop()


if __name__ == "__main__":
    main(scenario)
