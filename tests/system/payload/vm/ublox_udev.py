"""UbloxControl's unit and udev rule with a real kernel, udev and systemd (VM scenario).

The receiver is `panoseti emulate-f9t --tty /dev/ttyGS0` behind a USB CDC-ACM gadget that
enumerates as 1546:01a9 (usbgadget.py); binding the gadget is plugging the receiver in. In order:
1. the emulator serves the gadget's end before the gadget is bound;
2. a bind makes /dev/ttyACM0; the project's rule names it, sets its group and mode, hides it from
   ModemManager and has systemd start panoseti-ubloxcontrol@ttyACM0.service, which must reach
   `active` (Type=notify: READY=1); what each stage took goes to timings.json;
3. InitF9t through the unit's unix socket configures the receiver (the shipped example
   f9t_config with this emulator's UID), CaptureUblox streams its TIM-TP and NAV-TIMEUTC, and
   STATUS= says so;
4. the daemon reaches no tty but its own: another tty is missing from its private /dev, and a node
   of it made where the daemon can see it is still refused by the device policy;
5. an unplug stops the unit (BindsTo=) and ends the streams; with `init_on_start` configured,
   the re-plug's instance initialises the receiver by itself and CaptureUblox works with no
   InitF9t from the test;
6. systemd never restarted the daemon nor hit its watchdog (the longest time since a ping seen
   from outside is recorded: python is slow under TCG).
The test (tests/system/test_ublox_udev.py) ships the example f9t_config next to this file.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Self

import grpc
import yaml
from checklib import check, main, sh, show, wait_for
from usbgadget import AcmGadget
from vmsteps import VENV, check_booted, record, start_emulator, stop_emulator, udev_properties

from panoseti_appliance._proto import ublox_control_pb2 as pb
from panoseti_appliance.ublox.client import UbloxControlClient, chip_config, load_f9t_config

#: Not the emulator's default UID: a SUCCESS proves the daemon read this receiver's SEC-UNIQID.
UID = "C0FFEE1234"
PORT = "/dev/ttyACM0"
UNIT = "panoseti-ubloxcontrol@ttyACM0.service"
DEVICE_UNIT = "dev-ttyACM0.device"
LINK = "/dev/ublox-f9t"
TARGET = "unix:///run/panoseti/ublox.sock"
RULE = Path("/usr/local/lib/udev/rules.d/60-panoseti-ublox.rules")
SITE_CONFIG = Path(__file__).with_name("f9t_config.json5")
#: Where a second node of another tty is made, visible (read-only) to the daemon.
NODE_DIR = Path("/var/lib/panoseti-systest")
APPLIANCE_CONFIG = Path("/etc/panoseti/panoseti.yaml")
STREAMED = ("TIM-TP", "NAV-TIMEUTC")
#: Live messages of each kind a capture must get (the emulator sends each once a second).
LIVE_WANTED = 3
#: InitF9t (49 items written and read back) took under 1 s here; a busy host stretches TCG.
RPC_TIMEOUT_S = 120.0
UNIT_TIMEOUT_S = 120.0


# ---- small helpers ----------------------------------------------------------------------------


def props(unit: str, *names: str) -> dict[str, str]:
    """Several properties of a unit from one `systemctl show`."""
    args = [a for name in names for a in ("-p", name)]
    out = sh("systemctl", "show", *args, unit).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def after(t0: float, monotonic_usec: str) -> float | None:
    """Seconds from `t0` (time.monotonic) to a systemd *TimestampMonotonic value; None if unset.

    Both are CLOCK_MONOTONIC, so systemd's own record of a transition is compared with the moment
    the test acted, without the latency of polling systemctl.
    """
    usec = int(monotonic_usec or 0)
    return None if usec == 0 else round(usec / 1e6 - t0, 3)


def reached(t0: float, cond: Callable[[], object], timeout: float, interval: float) -> float | None:
    """Seconds from `t0` until `cond` held (polled every `interval`), or None after `timeout`."""
    took = wait_for(cond, timeout, interval)
    return None if took is None else round(time.monotonic() - t0, 3)


def f9t_config(device: str) -> dict[str, object]:
    """InitF9t's config for this receiver: the example file's chip, with our UID and `device`."""
    site = load_f9t_config(SITE_CONFIG)
    return {**chip_config(site, site.chips[0].uid), "f9t_uid": UID, "device": device}


def init_f9t(device: str) -> tuple[str, str]:
    """InitF9t through the unit's socket: (status name or gRPC code, message or details)."""
    try:
        with UbloxControlClient([TARGET]) as client:
            reply = client.init_f9t(f9t_config(device), timeout=RPC_TIMEOUT_S)[TARGET]
    except grpc.RpcError as err:
        code = err.code()
        return (code.name if code is not None else "UNKNOWN"), str(err.details())
    return pb.InitF9tResponse.InitStatus.Name(reply.init_status), reply.message


class _Background:
    """`_run` on a daemon thread for the length of a `with` block; `_stop` is set on the way out,
    and the thread gets `join_seconds` to notice it."""

    join_seconds = 10.0

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self.join_seconds)

    def _run(self) -> None:
        raise NotImplementedError


class Capture(_Background):
    """A CaptureUblox stream consumed on a thread; what came, when, and how the stream ended.

    Built on the client library with reconnect=False, so an end is seen as it is (its gRPC code
    and details) instead of being turned into a re-subscription.
    """

    join_seconds = 30.0

    def __init__(self, patterns: tuple[str, ...]) -> None:
        super().__init__()
        self.patterns = patterns
        self.data: list[pb.CaptureUbloxResponse] = []
        self.errors: list[str] = []
        self.end: str | None = None
        self.end_code: str | None = None
        self.ended_at: float | None = None

    def _run(self) -> None:
        with UbloxControlClient([TARGET]) as client:
            try:
                items = client.capture(list(self.patterns), self._stop, reconnect=False)
                for item in items:
                    if item.response.type == pb.CaptureUbloxResponse.ERROR:
                        self.errors.append(item.response.message)
                    else:
                        self.data.append(item.response)
            except grpc.RpcError as err:
                code = err.code()
                self.end_code = code.name if code is not None else "UNKNOWN"
                self.end = f"{self.end_code}: {err.details()}"
            else:
                if self._stop.is_set():
                    return  # cancelled by us
                self.end_code, self.end = "OK", "the stream ended without a status"
            self.ended_at = time.monotonic()

    def live(self, name: str) -> list[pb.CaptureUbloxResponse]:
        """Distinct frames of kind `name` (the first may be the cached newest one)."""
        seen: dict[bytes, pb.CaptureUbloxResponse] = {}
        for response in list(self.data):
            if response.name == name:
                seen.setdefault(response.payload, response)
        return list(seen.values())

    def streaming(self) -> bool:
        return all(len(self.live(name)) >= LIVE_WANTED for name in self.patterns)

    def summary(self) -> str:
        counts = ", ".join(f"{n} {len(self.live(n))}" for n in self.patterns)
        tim = self.live("TIM-TP")
        last = dict(tim[-1].parsed_data) if tim else {}
        return (
            f"distinct frames: {counts}; last TIM-TP towMS={last.get('towMS')} "
            f"qErr={last.get('qErr')}; errors {self.errors or 'none'}; end: {self.end or 'open'}"
        )


class WatchdogGaps(_Background):
    """The longest time since the last WATCHDOG=1 seen from outside, per daemon process.

    Sampled every half second from systemd's WatchdogTimestampMonotonic, so it is a lower bound
    of the worst gap (plus systemctl's own latency); it shows how close TCG comes to WatchdogSec.
    """

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit
        self.worst: dict[str, float] = {}

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            p = props(self.unit, "ActiveState", "MainPID", "WatchdogTimestampMonotonic")
            pinged = int(p.get("WatchdogTimestampMonotonic") or 0)
            if p.get("ActiveState") != "active" or pinged == 0:
                continue
            age = time.monotonic() - pinged / 1e6
            pid = p.get("MainPID", "?")
            self.worst[pid] = round(max(age, self.worst.get(pid, 0.0)), 2)


def unit_journal(*matches: str) -> list[dict[str, object]]:
    """Journal entries matching every FIELD=value in `matches`."""
    out = sh("journalctl", "--no-pager", "-o", "json", *matches).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


# ---- the steps --------------------------------------------------------------------------------


def plug(gadget: AcmGadget, label: str) -> bool:
    """Bind the gadget and follow the port, the symlink and the unit to `active`."""
    t0 = time.monotonic()
    gadget.bind()
    port = reached(t0, lambda: os.path.exists(PORT), 30, 0.01)
    linked = reached(t0, lambda: os.path.realpath(LINK) == PORT, 30, 0.01)
    settled = reached(
        t0, lambda: show(UNIT, "ActiveState") in ("active", "failed"), UNIT_TIMEOUT_S, 0.2
    )
    p = props(
        UNIT,
        "ActiveState",
        "SubState",
        "InactiveExitTimestampMonotonic",
        "ExecMainStartTimestampMonotonic",
        "ActiveEnterTimestampMonotonic",
        "StatusText",
        "MainPID",
    )
    device_unit = props(DEVICE_UNIT, "ActiveEnterTimestampMonotonic")
    stages = {
        "bind -> /dev/ttyACM0": port,
        "bind -> /dev/ublox-f9t": linked,
        f"bind -> {DEVICE_UNIT} active": after(t0, device_unit["ActiveEnterTimestampMonotonic"]),
        "bind -> unit starting": after(t0, p["InactiveExitTimestampMonotonic"]),
        "bind -> daemon exec": after(t0, p["ExecMainStartTimestampMonotonic"]),
        "bind -> unit active (READY=1)": after(t0, p["ActiveEnterTimestampMonotonic"]),
    }
    for stage, seconds in stages.items():
        record(f"{label}: {stage}", seconds)
    return check(
        f"{label}: udev starts {UNIT} and it reaches active (READY=1)",
        settled is not None and p["ActiveState"] == "active",
        f"{p['ActiveState']}/{p['SubState']} pid {p['MainPID']}; "
        + "; ".join(f"{k} {v} s" for k, v in stages.items())
        + f"; STATUS={p['StatusText']!r}",
    )


def check_udev_view(gadget_tty: str) -> None:
    """What the rule did to the port (step 2)."""
    udev = udev_properties(PORT)
    tag = udev.get("ID_PATH_TAG", "")
    per_port = f"/dev/panoseti/f9t-{tag}"
    check(
        "udev: /dev/ublox-f9t and /dev/panoseti/f9t-<ID_PATH_TAG> point at the port",
        bool(tag)
        and os.path.realpath(LINK) == PORT
        and os.path.realpath(per_port) == PORT
        and os.path.realpath(gadget_tty) != PORT,
        f"{LINK} -> {os.path.realpath(LINK)}; {per_port} -> {os.path.realpath(per_port)}; "
        f"DEVLINKS={udev.get('DEVLINKS')}",
    )
    st = os.stat(PORT)
    group = grp.getgrgid(st.st_gid).gr_name
    mode = stat.S_IMODE(st.st_mode)
    check(
        "udev: the port is group dialout, mode 0660",
        group == "dialout" and mode == 0o660,
        f"{PORT}: group {group}, mode {mode:04o}",
    )
    wants = udev.get("SYSTEMD_WANTS", "").split()
    check(
        "udev: ID_MM_DEVICE_IGNORE=1, tagged for systemd, SYSTEMD_WANTS names the instance",
        udev.get("ID_MM_DEVICE_IGNORE") == "1"
        and ":systemd:" in udev.get("TAGS", udev.get("CURRENT_TAGS", ""))
        and UNIT in wants,
        " ".join(
            f"{k}={udev.get(k)}"
            for k in ("ID_VENDOR_ID", "ID_MODEL_ID", "ID_MM_DEVICE_IGNORE", "TAGS", "SYSTEMD_WANTS")
        ),
    )
    # SYSTEMD_WANTS= becomes a Wants= of the tty's sysfs device unit (dev-ttyACM0.device, which
    # the instance binds to, follows that one).
    sysfs = os.path.realpath(f"/sys/class/tty/{Path(PORT).name}")
    device_unit = sh("systemd-escape", "--path", "--suffix=device", sysfs).stdout.strip()
    wants = show(device_unit, "Wants").split()
    check(
        "the instance was pulled in by the port's device unit",
        UNIT in wants,
        f"{device_unit} Wants={' '.join(wants)}; the instance's BindsTo={show(UNIT, 'BindsTo')}",
    )


def check_private_dev(gadget_tty: str) -> None:
    """Step 4 (before InitF9t): the daemon sees only its own tty, and the device policy holds."""
    pid = show(UNIT, "MainPID")
    private = Path(f"/proc/{pid}/root/dev")
    listing = sorted(os.listdir(private))
    ttys = [name for name in listing if name.startswith("tty")]
    check(
        "the daemon's private /dev holds its own port and no other tty",
        ttys == ["tty", "ttyACM0"],  # /dev/tty: the controlling terminal, no device
        f"/proc/{pid}/root/dev: {' '.join(listing)}",
    )
    other = os.stat(gadget_tty)
    other_group = grp.getgrgid(other.st_gid).gr_name
    check(
        f"outside the unit {gadget_tty} is a tty the daemon's groups could open",
        stat.S_ISCHR(other.st_mode) and other_group == "dialout" and other.st_mode & 0o060,
        f"{gadget_tty}: group {other_group}, mode {stat.S_IMODE(other.st_mode):04o} "
        f"(the unit runs with SupplementaryGroups=dialout)",
    )
    for device in (gadget_tty, "/dev/ttyS0", LINK):
        code, details = init_f9t(device)
        check(
            f"InitF9t on {device} is refused: it is not in the unit's /dev",
            code == "UNAVAILABLE" and "does not exist" in details,
            f"{code}: {details}",
        )
    # PrivateDevices= hides the node; DevicePolicy=closed must refuse the device even through a
    # node the daemon can see: one made outside, on the root file system (no nodev there).
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    node = NODE_DIR / Path(gadget_tty).name
    node.unlink(missing_ok=True)
    os.mknod(node, stat.S_IFCHR | 0o666, other.st_rdev)
    os.chmod(node, 0o666)  # the umask must not leave the daemon a plain permission error
    try:
        code, details = init_f9t(str(node))
    finally:
        node.unlink()
    check(
        f"through a node of {gadget_tty} it can see, the device policy still refuses it",
        code == "UNAVAILABLE" and "Operation not permitted" in details,
        f"{code}: {details}; DevicePolicy={show(UNIT, 'DevicePolicy')} "
        f"DeviceAllow={show(UNIT, 'DeviceAllow')}",
    )


def use_receiver() -> bool:
    """Step 3: InitF9t, CaptureUblox and STATUS= through the unit's socket."""
    status = show(UNIT, "StatusText")
    with Capture(STREAMED) as early:
        wait_for(lambda: early.end is not None, 30)
    check(
        "before InitF9t CaptureUblox is refused FAILED_PRECONDITION",
        early.end_code == "FAILED_PRECONDITION",
        f"{early.end}; STATUS={status!r}",
    )
    t0 = time.monotonic()
    code, message = init_f9t(PORT)
    record("InitF9t on /dev/ttyACM0", time.monotonic() - t0)
    ok = check(
        "InitF9t through the unit's unix socket configures the receiver on /dev/ttyACM0",
        code == "SUCCESS" and f"UID {UID}" in message,
        f"{time.monotonic() - t0:.1f} s: {code}: {message}",
    )
    if not ok:
        return False
    check_capture("CaptureUblox streams the receiver's TIM-TP and NAV-TIMEUTC")
    status_ok = reached(
        time.monotonic(), lambda: "receiver ready" in show(UNIT, "StatusText"), 15, 0.5
    )
    status = show(UNIT, "StatusText")
    check(
        "STATUS= names the device and says receiver ready",
        status_ok is not None and f"device {PORT}" in status and "receiver ready" in status,
        status,
    )
    return True


def check_capture(name: str) -> None:
    """A new CaptureUblox gets live TIM-TP and NAV-TIMEUTC frames (not only the cached ones)."""
    t0 = time.monotonic()
    with Capture(STREAMED) as capture:
        wait_for(lambda: capture.streaming() or capture.end is not None, 60)
    record(f"{name}: {LIVE_WANTED} of each", time.monotonic() - t0)
    frames = capture.live("TIM-TP") + capture.live("NAV-TIMEUTC")
    check(
        name,
        capture.streaming()
        and capture.end is None
        and all(f.payload[:2] == b"\xb5\x62" for f in frames),
        capture.summary(),
    )


def keep_loaded(unit: str) -> None:
    """Keep `unit` loaded once it stops, so that systemctl still shows how its process ended.

    An inactive template instance nothing refers to is unloaded at once, and `systemctl show` then
    reports a fresh unit's defaults. An active unit ordered after it is such a reference, and
    changes nothing about how it runs or stops.
    """
    done = sh(
        "systemd-run", "--unit=ublox-udev-keeper", "--remain-after-exit",
        f"--property=After={unit}", "/bin/true",
    )  # fmt: skip
    if done.returncode != 0:
        check(f"a unit ordered after {unit} keeps it loaded", False, done.stderr)


def unplug(gadget: AcmGadget) -> bool:
    """Step 5: an unplug ends a running capture and stops the unit; the daemon exits 0."""
    keep_loaded(UNIT)
    with Capture(STREAMED) as capture:
        wait_for(lambda: capture.live("TIM-TP"), 30)
        t0 = time.monotonic()
        gadget.unbind()
        gone = reached(t0, lambda: not os.path.exists(PORT) and not os.path.lexists(LINK), 30, 0.01)
        stopped = reached(
            t0, lambda: show(UNIT, "ActiveState") in ("inactive", "failed"), UNIT_TIMEOUT_S, 0.2
        )
        wait_for(lambda: capture.end is not None, 30)
    p = props(
        UNIT,
        "ActiveState",
        "Result",
        "ExecMainCode",
        "ExecMainStatus",
        "ActiveExitTimestampMonotonic",
        "InactiveEnterTimestampMonotonic",
    )
    stream_end = None if capture.ended_at is None else round(capture.ended_at - t0, 3)
    logged = [
        f"{int(str(e['__MONOTONIC_TIMESTAMP'])) / 1e6 - t0:.3f} s {e.get('MESSAGE')}"
        for e in unit_journal(f"_SYSTEMD_UNIT={UNIT}")
        if int(str(e["__MONOTONIC_TIMESTAMP"])) / 1e6 > t0
    ]
    stages = {
        "unbind -> port and symlink gone": gone,
        "unbind -> unit stopping": after(t0, p["ActiveExitTimestampMonotonic"]),
        "unbind -> unit inactive": after(t0, p["InactiveEnterTimestampMonotonic"]),
        "unbind -> capture ended": stream_end,
    }
    for stage, seconds in stages.items():
        record(f"unplug: {stage}", seconds)
    check(
        "unplug: the port and its links go away",
        gone is not None and not any(Path("/dev/panoseti").glob("f9t-*")),
        f"after {gone} s",
    )
    check(
        "unplug: a running CaptureUblox ends with UNAVAILABLE",
        capture.end_code == "UNAVAILABLE",
        f"{stream_end} s after the unbind; ERROR entries {capture.errors or 'none'}; "
        f"end: {capture.end}",
    )
    # ExecMainCode 1 is CLD_EXITED: the daemon exited by itself (0 after SIGTERM), not killed.
    return check(
        "unplug: BindsTo= stops the unit and the daemon exits 0",
        stopped is not None
        and p["ActiveState"] == "inactive"
        and p["Result"] == "success"
        and (p["ExecMainCode"], p["ExecMainStatus"]) == ("1", "0"),
        " ".join(f"{k}={v}" for k, v in p.items() if "Timestamp" not in k)
        + "; "
        + "; ".join(f"{k} {v} s" for k, v in stages.items())
        + "; the daemon logged after the unbind: "
        + " | ".join(logged),
    )


def configure_init_on_start() -> None:
    """What an operator writes so that a re-plugged receiver is initialised without a client."""
    site = load_f9t_config(SITE_CONFIG)
    settings = {"baud", "apply_to_layers", "verify_layer", "cfg_key_settings"}
    ublox = site.model_dump(mode="json", include=settings)
    position = site.chips[0].position
    assert position is not None, f"{SITE_CONFIG}: the example chip has a position"
    ublox["chips"] = [{"uid": UID, "position": position.model_dump(mode="json")}]
    ublox["init_on_start"] = True
    APPLIANCE_CONFIG.parent.mkdir(parents=True, exist_ok=True)
    APPLIANCE_CONFIG.write_text(yaml.safe_dump({"ublox": ublox}, sort_keys=False))
    done = sh(f"{VENV}/bin/panoseti", "config", "check", "--config", str(APPLIANCE_CONFIG))
    check(
        "panoseti config check accepts the config with init_on_start",
        done.returncode == 0,
        (done.stdout + done.stderr).strip(),
    )


def replug(gadget: AcmGadget) -> None:
    """Step 5, continued: the new instance initialises the receiver by itself."""
    configure_init_on_start()
    t0 = time.monotonic()
    if not plug(gadget, "re-plug"):
        return
    ready = reached(t0, lambda: "receiver ready" in show(UNIT, "StatusText"), 30, 0.2)
    record("re-plug: bind -> STATUS receiver ready", ready)
    status = show(UNIT, "StatusText")
    check(
        "re-plug: init_on_start brings the receiver up with no InitF9t (STATUS=)",
        ready is not None and f"device {PORT}" in status and f"UID {UID}" in status,
        f"after {ready} s: {status}",
    )
    check_capture("re-plug: CaptureUblox streams again without an InitF9t from the test")


def check_no_restarts(gaps: WatchdogGaps, starts_expected: int) -> None:
    """Step 6: no restart and no watchdog timeout since boot; `starts_expected` plugs so far."""
    p = props(UNIT, "NRestarts", "WatchdogUSec", "ActiveState")
    said = [str(e.get("MESSAGE")) for e in unit_journal(f"UNIT={UNIT}")]
    starts = [m for m in said if m.startswith("Started ")]
    bad = [m for m in said if "atchdog" in m or "restart" in m.lower()]
    own = unit_journal(f"_SYSTEMD_UNIT={UNIT}")
    withheld = [e.get("MESSAGE") for e in own if "watchdog" in str(e.get("MESSAGE"))]
    check(
        "systemd never restarted the daemon nor hit its watchdog",
        p["NRestarts"] == "0" and len(starts) == starts_expected and not bad and not withheld,
        f"NRestarts={p['NRestarts']} WatchdogUSec={p['WatchdogUSec']}; "
        f"{len(starts)} starts; watchdog/restart lines {bad + withheld or 'none'}; "
        f"largest time since a ping seen, per daemon pid: {gaps.worst}",
    )


def check_journal() -> None:
    """The daemon logs to the journal natively: its identifier and the DEVICE= field."""
    own = unit_journal(f"_SYSTEMD_UNIT={UNIT}")
    tagged = [
        e
        for e in own
        if e.get("SYSLOG_IDENTIFIER") == "panoseti-ubloxcontrol" and e.get("DEVICE") == PORT
    ]
    check(
        f"the journal has the daemon's entries with DEVICE={PORT}",
        bool(tagged) and all(e.get("SYSLOG_IDENTIFIER") == "panoseti-ubloxcontrol" for e in own),
        f"{len(own)} entries of the unit, {len(tagged)} with DEVICE; e.g. "
        + " | ".join(str(e.get("MESSAGE")) for e in tagged[:3]),
    )


@contextlib.contextmanager
def emulated_receiver() -> Iterator[tuple[AcmGadget, str]]:
    """Step 1: the gadget, unbound, with the emulator already serving its end."""
    gadget = AcmGadget()
    gadget.create()
    gadget_tty = gadget.gadget_tty()
    emulator = start_emulator(gadget_tty, "--uid", UID)
    try:
        check(
            "the emulator serves the gadget's tty before the gadget is bound",
            emulator.poll() is None and not gadget.bound() and gadget.host_tty() is None,
            f"{gadget_tty}; bound {gadget.bound()}; host tty {gadget.host_tty()}; "
            f"{UNIT} {show(UNIT, 'ActiveState')}",
        )
        yield gadget, gadget_tty
    finally:
        stop_emulator(emulator)
        gadget.remove()


def scenario() -> None:
    check_booted()
    check(
        "the node has the unit and the rule",
        sh("systemctl", "cat", "panoseti-ubloxcontrol@.service").returncode == 0 and RULE.exists(),
        f"{RULE} {'present' if RULE.exists() else 'missing'}",
    )
    with emulated_receiver() as (gadget, gadget_tty), WatchdogGaps(UNIT) as gaps:
        if not plug(gadget, "plug"):
            return
        check_udev_view(gadget_tty)
        check_private_dev(gadget_tty)
        if not use_receiver():
            return
        check_no_restarts(gaps, starts_expected=1)
        if not unplug(gadget):
            return
        replug(gadget)
        check_no_restarts(gaps, starts_expected=2)
        check_journal()


if __name__ == "__main__":
    main(scenario)
