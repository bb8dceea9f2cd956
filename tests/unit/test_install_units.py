"""`panoseti install-units`: layout, substitution, dry run, refusals, and one source (systemd/)."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from panoseti_appliance.cli.install_units import (
    DAEMONS,
    DESTINATIONS,
    InstallError,
    next_steps,
    packaged_units,
    plan,
    render,
)
from panoseti_appliance.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "systemd"
PANOSETI = Path(sys.executable).parent / "panoseti"


@pytest.fixture
def bindir(tmp_path: Path) -> Path:
    """A directory holding executable stand-ins for the two daemons."""
    out = tmp_path / "bin"
    out.mkdir()
    for name in DAEMONS:
        exe = out / name
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    return out


def files_under(prefix: Path) -> dict[str, Path]:
    return {str(p.relative_to(prefix)): p for p in sorted(prefix.rglob("*")) if p.is_file()}


def expected_text(name: str, bindir: Path) -> str:
    return (SOURCE / name).read_text().replace("@bindir@", str(bindir))


def test_every_file_of_systemd_dir_is_installed() -> None:
    assert {p.name for p in SOURCE.iterdir() if p.is_file()} == set(DESTINATIONS)


def test_packaged_files_are_the_systemd_dir() -> None:
    """The installed package carries systemd/ byte for byte (a stale install fails here)."""
    packaged = packaged_units()
    assert {p.name for p in packaged.iterdir() if p.is_file()} == set(DESTINATIONS)
    for name in DESTINATIONS:
        assert packaged.joinpath(name).read_bytes() == (SOURCE / name).read_bytes(), (
            f"the installed {name} differs from systemd/{name}: reinstall (pip install -e .)"
        )


def test_layout_and_modes(tmp_path: Path, bindir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prefix = tmp_path / "prefix"
    assert main(["install-units", "--prefix", str(prefix), "--bindir", str(bindir)]) == 0
    installed = files_under(prefix)
    assert sorted(installed) == sorted(DESTINATIONS.values())
    assert {
        "lib/systemd/system/panoseti-daqdata.socket",
        "lib/systemd/system/panoseti-daqdata.service",
        "lib/systemd/system/panoseti-ubloxcontrol@.service",
        "lib/udev/rules.d/60-panoseti-ublox.rules",
        "lib/sysusers.d/panoseti.conf",
        "lib/tmpfiles.d/panoseti.conf",
    } == set(installed)
    for path in installed.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    out = capsys.readouterr().out.splitlines()
    assert [f"wrote {prefix / target}" for target in DESTINATIONS.values()] == out[:-1]
    assert "do not search" in out[-1], "a prefix systemd does not search is said so"


def test_bindir_is_substituted_and_nothing_else_changes(tmp_path: Path, bindir: Path) -> None:
    prefix = tmp_path / "prefix"
    assert main(["install-units", "--prefix", str(prefix), "--bindir", str(bindir)]) == 0
    for name, target in DESTINATIONS.items():
        text = (prefix / target).read_text()
        assert text == expected_text(name, bindir)
        assert "@bindir@" not in text
    units = prefix / "lib/systemd/system"
    execs = [
        line
        for unit in units.iterdir()
        for line in unit.read_text().splitlines()
        if line.startswith("ExecStart=")
    ]
    assert sorted(execs) == [
        f"ExecStart={bindir}/panoseti-daqdata",
        f"ExecStart={bindir}/panoseti-ubloxcontrol --set ublox.device=/dev/%I",
    ]
    rules = (prefix / DESTINATIONS["60-panoseti-ublox.rules"]).read_text()
    assert 'ENV{SYSTEMD_WANTS}+="panoseti-ubloxcontrol@%k.service"' in rules


def test_a_placeholder_without_value_is_an_error(tmp_path: Path, bindir: Path) -> None:
    with pytest.raises(InstallError, match="@libexecdir@"):
        render("ExecStart=@bindir@/x\nExecStop=@libexecdir@/y\n", {"bindir": "/b"}, "x.service")
    source = tmp_path / "source"
    shutil.copytree(SOURCE, source)
    unit = source / "panoseti-daqdata.service"
    unit.write_text(unit.read_text() + "Environment=DATA=@datadir@\n")
    with pytest.raises(InstallError, match=r"panoseti-daqdata.service: no value for @datadir@"):
        plan(tmp_path / "prefix", bindir, source)
    assert not (tmp_path / "prefix").exists()


def test_unexpected_packaged_files_are_refused(tmp_path: Path, bindir: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(SOURCE, source)
    (source / "panoseti-daqdata.socket").unlink()
    with pytest.raises(InstallError, match="reinstall the package"):
        plan(tmp_path / "prefix", bindir, source)


def test_dry_run_writes_nothing(
    tmp_path: Path, bindir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = tmp_path / "prefix"
    args = ["install-units", "--prefix", str(prefix), "--bindir", str(bindir), "--dry-run"]
    assert main(args) == 0
    assert not prefix.exists()
    out = capsys.readouterr().out.splitlines()
    assert [f"would write {prefix / target}" for target in DESTINATIONS.values()] == out[:-1]


def test_reinstall_replaces_files_and_leaves_no_temporaries(tmp_path: Path, bindir: Path) -> None:
    prefix = tmp_path / "prefix"
    args = ["install-units", "--prefix", str(prefix), "--bindir", str(bindir)]
    assert main(args) == 0
    service = prefix / DESTINATIONS["panoseti-daqdata.service"]
    service.write_text("edited by hand\n")
    assert main(args) == 0
    assert service.read_text() == expected_text("panoseti-daqdata.service", bindir)
    assert sorted(files_under(prefix)) == sorted(DESTINATIONS.values())


def refusal(tmp_path: Path, bindir: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """`install-units --bindir BINDIR` fails (exit 1) before it writes anything; its stderr."""
    prefix = tmp_path / "prefix"
    assert main(["install-units", "--prefix", str(prefix), "--bindir", str(bindir)]) == 1
    assert not prefix.exists()
    return capsys.readouterr().err


@pytest.mark.parametrize("missing", DAEMONS)
def test_refuses_a_bindir_without_the_daemons(
    tmp_path: Path, bindir: Path, missing: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (bindir / missing).unlink()
    assert f"{missing} is not in {bindir}; pass --bindir DIR" in refusal(tmp_path, bindir, capsys)


def test_refuses_a_daemon_that_is_not_executable(
    tmp_path: Path, bindir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (bindir / "panoseti-daqdata").chmod(0o644)
    assert "panoseti-daqdata is not executable" in refusal(tmp_path, bindir, capsys)


def test_refuses_a_bindir_unit_files_would_misread(
    tmp_path: Path, bindir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spaced = tmp_path / "my venv" / "bin"
    shutil.copytree(bindir, spaced)
    assert "unit files would misread" in refusal(tmp_path, spaced, capsys)


def test_unwritable_prefix_is_one_clear_line(
    tmp_path: Path, bindir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = tmp_path / "a-file"
    prefix.write_text("")
    assert main(["install-units", "--prefix", str(prefix), "--bindir", str(bindir)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"panoseti install-units: cannot write {prefix}/lib/")
    assert "(run as root, or choose --prefix)" in err
    assert "\n" not in err


def test_next_steps_for_a_searched_prefix() -> None:
    steps = next_steps(Path("/usr/local"))
    assert steps == [
        "next, as root:",
        "  systemd-sysusers /usr/local/lib/sysusers.d/panoseti.conf",
        "  systemd-tmpfiles --create /usr/local/lib/tmpfiles.d/panoseti.conf",
        "  udevadm control --reload-rules && udevadm trigger --subsystem-match=tty",
        "  systemctl daemon-reload",
        "  systemctl enable --now panoseti-daqdata.socket panoseti-daqdata.service",
    ]


def test_default_bindir_is_where_the_panoseti_command_lives(tmp_path: Path) -> None:
    """Run through a symlink to the command: the units point at the real venv bin directory."""
    link = tmp_path / "elsewhere" / "panoseti"
    link.parent.mkdir()
    link.symlink_to(PANOSETI)
    prefix = tmp_path / "prefix"
    done = subprocess.run(
        [str(link), "install-units", "--prefix", str(prefix)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    service = (prefix / DESTINATIONS["panoseti-daqdata.service"]).read_text()
    assert f"ExecStart={PANOSETI.resolve().parent}/panoseti-daqdata\n" in service


def test_warns_when_protecthome_hides_the_interpreter(
    tmp_path: Path, bindir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A venv whose python lives under /root installs, with a warning naming that python."""
    args = ["install-units", "--prefix", str(tmp_path / "p"), "--bindir", str(bindir)]
    assert main(args) == 0
    assert capsys.readouterr().err == ""
    (bindir / "panoseti-daqdata").write_text("#!/root/venv/bin/python -E\n")
    assert main(args) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert "ProtectHome=yes, which hides /root/venv/bin/python " in err[0]
