"""The installed units pass `systemd-analyze verify` and `systemd-analyze security` (exposure <= 2.5),
and the sysusers.d and tmpfiles.d entries do what they say.

Checks on the host, no container: the files are installed by `panoseti install-units` into a
temp prefix with this venv's bin directory, because verify checks that each ExecStart= program
exists. verify only prints warnings, so any output line fails. The template is checked through an
instance, as systemd would load it for a receiver on /dev/ttyACM0. systemd-sysusers and
systemd-tmpfiles apply the entries to a scratch root (`--root`), never to this machine.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from panoseti_appliance.cli.install_units import install
from tests.prerequisites import unavailable

#: The most exposure `systemd-analyze security` may report for any service (0 safe … 10 unsafe).
MAX_EXPOSURE = 2.5
UNITS = (
    "panoseti-daqdata.socket",
    "panoseti-daqdata.service",
    "panoseti-ubloxcontrol@ttyACM0.service",
)
SERVICES = tuple(u for u in UNITS if u.endswith(".service"))
EXPOSURE = re.compile(r"Overall exposure level for (\S+): (\d+(?:\.\d+)?)")


@pytest.fixture(scope="module")
def analyze() -> str:
    """The systemd-analyze program."""
    return tool("systemd-analyze")


def tool(name: str) -> str:
    """The path of a program of Debian's systemd package."""
    found = shutil.which(name)
    if found is None:
        unavailable(f"{name} not found (Debian package systemd)")
    assert found is not None
    return found


@pytest.fixture(scope="module")
def prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `panoseti install-units --prefix` writes, pointing at this venv's daemons."""
    out = tmp_path_factory.mktemp("prefix")
    install(out, Path(sys.executable).parent, dry_run=False)
    return out


@pytest.fixture(scope="module")
def unit_dir(prefix: Path) -> Path:
    return prefix / "lib/systemd/system"


def run(program: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([program, *args], capture_output=True, text=True, timeout=120)


def verify_output(analyze: str, unit: Path) -> str:
    done = run(analyze, "verify", str(unit))
    return f"exit status {done.returncode}\n{done.stdout}{done.stderr}".strip()


@pytest.mark.parametrize("name", UNITS)
def test_verify_prints_nothing(analyze: str, unit_dir: Path, name: str) -> None:
    assert verify_output(analyze, unit_dir / name) == "exit status 0"


def test_verify_catches_what_it_should(analyze: str, unit_dir: Path, tmp_path: Path) -> None:
    """The check above can fail: a misspelt key and a missing program are both reported."""
    shutil.copy(unit_dir / "panoseti-daqdata.socket", tmp_path)
    service = (unit_dir / "panoseti-daqdata.service").read_text()
    broken = tmp_path / "panoseti-daqdata.service"
    broken.write_text(service.replace("WatchdogSec=", "WatchdogSecs="))
    assert "Unknown key 'WatchdogSecs'" in verify_output(analyze, broken)
    broken.write_text(re.sub(r"ExecStart=\S+", "ExecStart=/nonexistent/panoseti-daqdata", service))
    assert "/nonexistent/panoseti-daqdata is not executable" in verify_output(analyze, broken)


@pytest.mark.parametrize("name", SERVICES)
def test_security_exposure(
    analyze: str,
    unit_dir: Path,
    name: str,
    record_property: Callable[[str, object], None],
) -> None:
    done = run(analyze, "security", "--offline=true", "--no-pager", str(unit_dir / name))
    found = EXPOSURE.search(done.stdout)
    assert found is not None, done.stdout + done.stderr
    assert found.group(1) == name, done.stdout + done.stderr
    exposure = float(found.group(2))
    record_property("exposure", exposure)
    print(f"{name}: exposure {exposure}")
    assert exposure <= MAX_EXPOSURE, done.stdout


def test_sysusers_and_tmpfiles_entries(prefix: Path, tmp_path: Path) -> None:
    """User and group panoseti, /run/panoseti owned by them, Hashpipe's sockets never cleaned."""
    if os.geteuid() != 0:
        unavailable("applying sysusers.d and tmpfiles.d entries needs root (chown)")
    sysusers, tmpfiles = tool("systemd-sysusers"), tool("systemd-tmpfiles")
    # A short path: the socket paths below must fit in sun_path (108 bytes).
    with tempfile.TemporaryDirectory(prefix="units-") as scratch:
        check_entries(sysusers, tmpfiles, prefix, Path(scratch), tmp_path)


def check_entries(sysusers: str, tmpfiles: str, prefix: Path, root: Path, tmp_path: Path) -> None:
    (root / "etc").mkdir()
    done = run(sysusers, f"--root={root}", str(prefix / "lib/sysusers.d/panoseti.conf"))
    assert done.returncode == 0, done.stderr
    passwd = (root / "etc/passwd").read_text().splitlines()
    [user] = [line.split(":") for line in passwd if line.startswith("panoseti:")]
    uid, gid = int(user[2]), int(user[3])
    assert user[5:] == ["/", "/usr/sbin/nologin"], user
    assert uid < 1000, user
    assert f"panoseti:x:{gid}:" in (root / "etc/group").read_text().splitlines()

    tmpfiles_conf = str(prefix / "lib/tmpfiles.d/panoseti.conf")
    done = run(tmpfiles, f"--root={root}", "--create", tmpfiles_conf)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    run_dir = (root / "run/panoseti").stat()
    assert (run_dir.st_uid, run_dir.st_gid, stat.S_IMODE(run_dir.st_mode)) == (uid, gid, 0o755)

    # Age 0 cleans every file of /tmp; the x line must keep Hashpipe's sockets anyway. The socket
    # files are closed first: systemd-tmpfiles never removes a socket that is still bound.
    (root / "tmp").mkdir()
    names = ("hashpipe_grpc.dp_img8.sock", "hashpipe_grpc.dp_ph1024.sock", "other.sock")
    for name in names:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(root / "tmp" / name))
    age_zero = tmp_path / "tmp-age-zero.conf"
    age_zero.write_text("d /tmp 1777 root root 0\n")
    done = run(tmpfiles, f"--root={root}", "--clean", str(age_zero), tmpfiles_conf)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (root / "tmp").iterdir()) == sorted(names[:2])
