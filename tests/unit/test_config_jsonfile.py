"""The one reader of the original JSON files: each failure names the file, the line and the fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from panoseti_appliance.config import ConfigError, read_daq_config, read_hp_io_config
from panoseti_appliance.config.files import FileProblems
from panoseti_appliance.config.jsonfile import key_lines, read_json5
from panoseti_appliance.ublox.client import load_f9t_config


def test_json5_comments_and_trailing_commas_are_read(tmp_path: Path) -> None:
    path = tmp_path / "f9t_config.json5"
    path.write_text('{\n  // the receiver\n  "timepulse": {"freq": 1,},\n}\n')
    assert read_json5(path) == (
        {"timepulse": {"freq": 1}},
        {("timepulse",): 3, ("timepulse", "freq"): 3},
    )


@pytest.mark.parametrize("read", [read_hp_io_config, load_f9t_config, read_daq_config])
def test_each_failure_names_the_file_whatever_reads_it(
    read: Callable[[Path], Any], tmp_path: Path
) -> None:
    def problem(path: Path) -> str:
        with pytest.raises(ConfigError) as info:
            read(path)
        (found,) = info.value.problems
        return found

    missing = tmp_path / "missing.json"
    assert problem(missing) == f"{missing}: file not found; check the path"
    broken = tmp_path / "broken.json"
    broken.write_text("{\n  not json")
    assert problem(broken).startswith(f"{broken}:2: invalid JSON5: ")
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    assert problem(listed) == f"{listed}:1: the top level must be a JSON object"
    directory = tmp_path / "a_directory"
    directory.mkdir()
    assert problem(directory) == f"{directory}: is a directory; give the path of a file"


def test_unreadable_text_is_a_file_problem(tmp_path: Path) -> None:
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe{}")
    with pytest.raises(FileProblems, match=rf"^{binary}: cannot be read: "):
        read_json5(binary)


def test_key_lines_follow_nesting() -> None:
    text = '{\n  "a": {\n    "b": 1\n  },\n  b: 2,\n  "l": [\n    {"c": 1},\n    {"c": 2}\n  ]\n}\n'
    data = {"a": {"b": 1}, "b": 2, "l": [{"c": 1}, {"c": 2}]}
    lines = key_lines(text, data)
    assert lines[("a",)] == 2
    assert lines[("a", "b")] == 3
    assert lines[("b",)] == 5
    assert lines[("l", 0)] == 7
    assert lines[("l", 1, "c")] == 8
