"""DaqData socket activation on a node: the Hashpipe sockets, the first producer, READY, STATUS,
a client's stream, and what the journal holds. The socket unit alone is started, as on a node
that enables it without the service."""

from __future__ import annotations

import grp
import os
import stat

from checklib import check, main, sh, show, wait_for
from node import (
    DAQ_UNIX,
    HASHPIPE_TEMPLATE,
    PRODUCTS,
    SERVICE,
    SOCKET,
    Feed,
    health,
    images,
    journal,
    ping,
)


def scenario() -> None:
    started = sh("systemctl", "start", SOCKET)
    check("the socket unit starts", started.returncode == 0, started.stderr.strip())
    listening = sh("ss", "-xlnH").stdout
    paths = [HASHPIPE_TEMPLATE.format(dp=dp) for dp in PRODUCTS]
    check("the four Hashpipe sockets listen", all(p in listening for p in paths), listening)
    st = os.stat(paths[1])
    check(
        "they are group panoseti, mode 0660",
        stat.S_IMODE(st.st_mode) == 0o660 and grp.getgrgid(st.st_gid).gr_name == "panoseti",
        f"{stat.filemode(st.st_mode)} group {grp.getgrgid(st.st_gid).gr_name}",
    )
    check(
        "the service has not started before the first connection",
        show(SERVICE, "ActiveState") == "inactive",
        show(SERVICE, "ActiveState"),
    )

    # Hashpipe's own pace (one frame per module and product every 100 ms): what it writes while
    # the service starts waits in its send buffer (about 49 img16 frames) and must all arrive.
    feed = Feed(["ph256", "img16"], rate_hz=10).start()
    took = wait_for(lambda: show(SERVICE, "ActiveState") == "active", timeout=60, interval=0.02)
    check(
        "a producer's first connection starts the service",
        took is not None,
        f"active {took:.2f} s after the producer started" if took is not None else "not active",
    )
    # Type=notify: "active" only after READY=1, which the daemon sends once it serves.
    answered = ping(DAQ_UNIX, timeout=5)
    check("active only after READY: gRPC answers at once", answered is None, answered or "Ping ok")
    check("health SERVING", health() == "SERVING" and health("daqdata.DaqData") == "SERVING")

    def two_connections() -> bool:
        return "2 Hashpipe connections" in show(SERVICE, "StatusText")

    took = wait_for(two_connections, timeout=20)
    status = show(SERVICE, "StatusText")
    check(
        "STATUS= says hp_io, frames/s in, streams and producers",
        took is not None and status.startswith("hp_io RUNNING; ") and " frames/s in; " in status,
        status,
    )
    shown = sh("systemctl", "status", "--no-pager", SERVICE).stdout
    status_line = next((line.strip() for line in shown.splitlines() if "Status:" in line), "")
    check(
        "systemctl status shows the STATUS line",
        status_line.startswith('Status: "hp_io RUNNING; '),
        status_line,
    )

    got = images(20)
    modules = {img.module_id for img in got}
    kinds = {img.type for img in got}
    check(
        "a client streams the producer's images",
        len(got) == 20 and modules == {7} and len(kinds) == 2,
        f"{len(got)} images, modules {sorted(modules)}, {len(kinds)} image types",
    )

    pid = show(SERVICE, "MainPID")
    user = sh("ps", "-o", "user=", "-p", pid).stdout.strip()
    check("the daemon runs as user panoseti", user == "panoseti", f"pid {pid} user {user}")
    stats = feed.stop()
    lost = {dp: {k: v for k, v in c.items() if k != "sent"} for dp, c in stats.items()}
    check(
        "the producer lost nothing",
        all(set(c) <= {"connects"} for c in lost.values()),
        str(stats),
    )

    unit = f"_SYSTEMD_UNIT={SERVICE}"
    tagged = journal(unit, "MODULE_ID=7")
    products = {e.get("DATA_PRODUCT") for e in tagged}
    check(
        "journald holds MODULE_ID and DATA_PRODUCT",
        products == {"ph256", "img16"}
        and all(e.get("SYSLOG_IDENTIFIER") == "panoseti-daqdata" for e in tagged),
        f"{len(tagged)} entries with MODULE_ID=7; products {sorted(map(str, products))}",
    )
    peers = [e for e in journal(unit) if "PEER" in e]
    check(
        "journald holds PEER for clients",
        any("stream from" in str(e.get("MESSAGE")) for e in peers),
        f"{len(peers)} entries with PEER, e.g. {peers[0].get('PEER') if peers else None}",
    )
    levels = {str(e.get("PRIORITY")) for e in journal(unit)}
    check(
        "log levels keep their priority",
        "6" in levels and levels <= {"3", "4", "5", "6", "7"},
        levels,
    )
    check("no restarts", show(SERVICE, "NRestarts") == "0", show(SERVICE, "NRestarts"))


if __name__ == "__main__":
    main(scenario)
