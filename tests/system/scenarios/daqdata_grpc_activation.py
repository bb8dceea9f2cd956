"""The gRPC unix socket held by systemd too (a drop-in adds it to panoseti-daqdata.socket): a
client's first call starts the daemon, which serves the adopted socket (through its relay)."""

from __future__ import annotations

import os

from checklib import check, main, sh, show, wait_for
from node import DAQ_UNIX, SERVICE, SOCKET, health, ping

PATH = "/run/panoseti/daqdata.sock"


def scenario() -> None:
    started = sh("systemctl", "start", SOCKET)
    check("the socket unit starts", started.returncode == 0, started.stderr.strip())
    listening = sh("ss", "-xlnH").stdout
    check("systemd listens on the gRPC socket", PATH in listening)
    inode = os.stat(PATH).st_ino
    check("the service is not running", show(SERVICE, "ActiveState") == "inactive")
    answered = ping(DAQ_UNIX, timeout=60, wait=True)
    check("a client's first call starts the daemon and is answered", answered is None, answered)
    check("the service is active", show(SERVICE, "ActiveState") == "active")
    check("health SERVING through the adopted socket", health() == "SERVING")
    check(
        "the daemon adopted systemd's socket instead of binding its own",
        os.stat(PATH).st_ino == inode,
        f"inode {inode} -> {os.stat(PATH).st_ino}",
    )
    restarted = sh("systemctl", "restart", SERVICE)
    took = wait_for(lambda: ping(DAQ_UNIX, timeout=5) is None, timeout=30)
    check(
        "after a restart the same socket serves again",
        restarted.returncode == 0 and took is not None and os.stat(PATH).st_ino == inode,
        f"answered {took:.2f} s after the restart returned" if took is not None else "no answer",
    )


if __name__ == "__main__":
    main(scenario)
