"""`panoseti install-units`: install the systemd units, udev rule, sysusers.d and tmpfiles.d entries.

The files come from the repository's systemd/ directory, which the build copies into the package
(`panoseti_appliance/_units`), so a Debian node installs exactly what NixOS installs into `$out/lib`.
Their `@bindir@` is replaced by the directory holding the daemons: by default the directory of
this `panoseti` command, because pip puts `panoseti-daqdata` and `panoseti-ubloxcontrol` next to it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

#: The daemons the units start; both must be in the bindir.
DAEMONS = ("panoseti-daqdata", "panoseti-ubloxcontrol")
#: Where each file of systemd/ goes, relative to the prefix. systemd 252 and udev 252 search
#: /usr/local/lib/{systemd/system,udev/rules.d,sysusers.d,tmpfiles.d} as well as /usr/lib/...
DESTINATIONS: dict[str, str] = {
    "panoseti-daqdata.socket": "lib/systemd/system/panoseti-daqdata.socket",
    "panoseti-daqdata.service": "lib/systemd/system/panoseti-daqdata.service",
    "panoseti-ubloxcontrol@.service": "lib/systemd/system/panoseti-ubloxcontrol@.service",
    "60-panoseti-ublox.rules": "lib/udev/rules.d/60-panoseti-ublox.rules",
    "panoseti.sysusers.conf": "lib/sysusers.d/panoseti.conf",
    "panoseti.tmpfiles.conf": "lib/tmpfiles.d/panoseti.conf",
}
#: Prefixes whose lib/ systemd, udev, systemd-sysusers and systemd-tmpfiles search by themselves.
SEARCHED_PREFIXES = (Path("/usr/local"), Path("/usr"))
DEFAULT_PREFIX = Path("/usr/local")
#: What the units' ProtectHome=yes hides from the daemons.
HIDDEN_FROM_UNITS = (Path("/home"), Path("/root"), Path("/run/user"))
PLACEHOLDER = re.compile(r"@[a-z_]+@")
#: Characters unit files give a meaning to (word splitting, quoting, specifiers, variables).
UNSAFE_IN_PATH = re.compile(r"[\s\"'\\%$;]")


class InstallError(Exception):
    """A problem the user can fix; printed as one line, exit status 1."""


@dataclass(frozen=True)
class Planned:
    """One file to write: where, and its content after substitution."""

    path: Path
    text: str


def packaged_units() -> Traversable:
    """The copy of systemd/ shipped in the package (made by the build, see setup.py)."""
    return resources.files("panoseti_appliance").joinpath("_units")


def default_bindir() -> Path:
    """The directory of the running `panoseti` command (symlinks resolved)."""
    return Path(sys.argv[0]).resolve().parent


def check_bindir(bindir: Path) -> None:
    """Refuse a bindir the units could not run the daemons from."""
    if UNSAFE_IN_PATH.search(str(bindir)):
        raise InstallError(
            f"bindir {bindir} contains a space, quote, backslash, '%', '$' or ';', which unit "
            "files would misread; install the package under a plainer path"
        )
    for name in DAEMONS:
        exe = bindir / name
        if not exe.is_file():
            raise InstallError(
                f"{name} is not in {bindir}; pass --bindir DIR, the directory where pip "
                "installed the panoseti commands (e.g. /opt/panoseti/bin)"
            )
        if not os.access(exe, os.X_OK):
            raise InstallError(f"{exe} is not executable; reinstall the package")


def hidden_programs(bindir: Path) -> list[Path]:
    """The daemons' scripts and interpreters that ProtectHome=yes would hide (symlinks resolved).

    A venv made by a python under /root (pyenv, say) runs from a shell but not from the units.
    """
    found: set[Path] = set()
    for name in DAEMONS:
        exe = bindir / name
        programs = [exe]
        with exe.open("rb") as script:
            first = script.readline()
        if first.startswith(b"#!") and first[2:].split():
            programs.append(Path(os.fsdecode(first[2:].split()[0])))
        for program in programs:
            real = program.resolve()
            if any(real.is_relative_to(hidden) for hidden in HIDDEN_FROM_UNITS):
                found.add(real)
    return sorted(found)


def render(text: str, values: Mapping[str, str], name: str) -> str:
    """`text` with each `@key@` replaced; a placeholder without a value is an error."""
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    left = sorted(set(PLACEHOLDER.findall(text)))
    if left:
        raise InstallError(f"{name}: no value for {', '.join(left)}")
    return text


def plan(prefix: Path, bindir: Path, source: Traversable | None = None) -> list[Planned]:
    """Every file to write under `prefix`, rendered for `bindir`."""
    source = packaged_units() if source is None else source
    present = {entry.name for entry in source.iterdir() if entry.is_file()}
    if present != set(DESTINATIONS):
        raise InstallError(
            f"the packaged unit files ({', '.join(sorted(present)) or 'none'}) are not the "
            f"expected {', '.join(sorted(DESTINATIONS))}; reinstall the package"
        )
    values = {"bindir": str(bindir)}
    return [
        Planned(prefix / target, render(source.joinpath(name).read_text(), values, name))
        for name, target in DESTINATIONS.items()
    ]


def write(planned: Planned) -> None:
    """Write one file atomically (a reader never sees half a unit), mode 0644."""
    try:
        planned.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=planned.path.parent, prefix=f".{planned.path.name}.")
        try:
            with os.fdopen(fd, "w") as out:
                out.write(planned.text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, planned.path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        raise InstallError(
            f"cannot write {planned.path}: {exc.strerror} (run as root, or choose --prefix)"
        ) from None


def next_steps(prefix: Path) -> list[str]:
    """What to run after installing into `prefix` (the lines printed after the paths)."""
    if prefix not in SEARCHED_PREFIXES:
        return [
            f"systemd and udev do not search {prefix}; these files are for packaging "
            f"(or use --prefix {DEFAULT_PREFIX})"
        ]
    return [
        "next, as root:",
        f"  systemd-sysusers {prefix}/{DESTINATIONS['panoseti.sysusers.conf']}",
        f"  systemd-tmpfiles --create {prefix}/{DESTINATIONS['panoseti.tmpfiles.conf']}",
        "  udevadm control --reload-rules && udevadm trigger --subsystem-match=tty",
        "  systemctl daemon-reload",
        "  systemctl enable --now panoseti-daqdata.socket panoseti-daqdata.service",
    ]


def install(prefix: Path, bindir: Path, dry_run: bool) -> list[str]:
    """Install (or, dry, only plan) every file; the lines to print."""
    check_bindir(bindir)
    planned = plan(prefix, bindir)
    lines = []
    for item in planned:
        if not dry_run:
            write(item)
        lines.append(f"{'would write' if dry_run else 'wrote'} {item.path}")
    return lines + next_steps(prefix)


def _run(args: argparse.Namespace) -> int:
    prefix = Path(os.path.abspath(args.prefix))
    bindir = Path(os.path.abspath(args.bindir)) if args.bindir else default_bindir()
    try:
        lines = install(prefix, bindir, args.dry_run)
    except InstallError as exc:
        print(f"panoseti install-units: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    for program in hidden_programs(bindir):
        print(
            f"warning: the units set ProtectHome=yes, which hides {program} from the daemons; "
            "install the package outside /home and /root (e.g. python3 -m venv /opt/panoseti)",
            file=sys.stderr,
        )
    return 0


def register(parser: argparse.ArgumentParser) -> None:
    """Fill the `panoseti install-units` parser."""
    parser.add_argument(
        "--prefix",
        default=str(DEFAULT_PREFIX),
        help=f"install under PREFIX/lib (default: {DEFAULT_PREFIX})",
    )
    parser.add_argument(
        "--bindir",
        help="directory holding panoseti-daqdata and panoseti-ubloxcontrol "
        "(default: the directory of this panoseti command)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would be written, write nothing"
    )
    parser.set_defaults(func=_run)
