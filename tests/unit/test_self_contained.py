"""The project refers to its own documents, never to specification files outside the repository.

Comments, docstrings, CLI help and docs/ once cited numbered sections of specification files that
were never part of the repository, so no reader could follow them. What a contract says lives in
docs/, in the project's own words, and references name a document and a section title there.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from panoseti_appliance.cli.main import build_parser
from tests.prerequisites import unavailable

REPO = Path(__file__).resolve().parents[2]
#: This file spells the patterns out, so it is the one file not scanned.
SELF = Path(__file__).resolve().relative_to(REPO).as_posix()
#: Real recordings and samples of the original's files: test input, not the project's prose.
EXCLUDED_DIRS = ("tests/data/",)
#: A specification file by name or path, a numbered section (the project's documents are cited
#: by section title, never by number), "the spec", or the original's bug list by number.
OUTSIDE_REFERENCE = re.compile(
    r"spec [a-z]+\.md|spec/[a-z]+\.md|spec §|\(spec [a-z§]|shared/spec|§"
    r"|\bthe spec\b|\bbugs? [A-I]\.\d",
    re.IGNORECASE,
)


def project_files() -> list[str]:
    """Tracked files plus untracked ones git does not ignore, as paths relative to the repository."""
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        unavailable(f"cannot list the project's files with git: {exc}")
    return sorted({name for name in listing.decode().split("\0") if name})


def text_lines(name: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of a text file; nothing for binary, missing or linked files."""
    path = REPO / name
    if path.is_symlink() or not path.is_file():
        return
    data = path.read_bytes()
    if b"\0" in data:
        return
    yield from enumerate(data.decode("utf-8", "replace").splitlines(), 1)


def outside_references(names: list[str]) -> list[str]:
    """Every `path:line: text` among `names` that cites a document outside the repository."""
    found = []
    for name in names:
        if name == SELF or name.startswith(EXCLUDED_DIRS):
            continue
        for number, line in text_lines(name):
            if OUTSIDE_REFERENCE.search(line):
                found.append(f"{name}:{number}: {line.strip()}")
    return found


def test_pattern_catches_every_kind_of_outside_reference() -> None:
    cited = [
        'Hashpipe sockets (spec daqdata.md "C.3").',
        "see spec/ublox.md for the receiver",
        "parsed dict of spec \u00a7E.3",
        "what stays applied (spec B, step 8)",
        "read against the spec table line by line",
        "a re-init cannot starve readers (bug I.2)",
        "the full text is in ../shared/spec/pff.md",
    ]
    assert [line for line in cited if not OUTSIDE_REFERENCE.search(line)] == []
    own = [
        'docs/ingestion.md, "What travels on a socket"',
        "spec = importlib.util.spec_from_file_location(name, path)",
        "module = importlib.util.module_from_spec(spec)",
        '"kernelspec": {"name": "python3"}',
        "def parse_module_range(spec: str) -> list[int]:",
    ]
    assert [line for line in own if OUTSIDE_REFERENCE.search(line)] == []


def test_no_file_cites_a_document_outside_the_repository() -> None:
    names = project_files()
    assert "README.md" in names
    assert "panoseti_appliance/cli/daq.py" in names
    found = outside_references(names)
    assert not found, (
        "cite docs/ (a document and a section title) instead of a file outside the repository:\n"
        + "\n".join(found)
    )


def all_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """A parser and every subcommand parser below it."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from all_parsers(sub)


def test_panoseti_help_cites_nothing_outside() -> None:
    parsers = list(all_parsers(build_parser(None)))
    progs = {p.prog for p in parsers}
    assert {"panoseti daq", "panoseti daq stream", "panoseti ublox capture"} <= progs
    cited = [
        f"{p.prog}: {line.strip()}"
        for p in parsers
        for line in p.format_help().splitlines()
        if OUTSIDE_REFERENCE.search(line)
    ]
    assert not cited, "\n".join(cited)


@pytest.mark.parametrize("daemon", ["panoseti-daqdata", "panoseti-ubloxcontrol"])
def test_daemon_help_cites_nothing_outside(daemon: str) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / daemon), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "--config" in result.stdout
    cited = [line for line in result.stdout.splitlines() if OUTSIDE_REFERENCE.search(line)]
    assert not cited, "\n".join(cited)
