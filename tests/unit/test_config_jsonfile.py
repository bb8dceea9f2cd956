"""The one reader of the original JSON files: each failure names the kind of file and its path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from panoseti_appliance.daqdata.client.rpc import load_hp_io_cfg
from panoseti_appliance.ublox.client import load_f9t_config


def test_json5_comments_and_trailing_commas_are_read(tmp_path: Path) -> None:
    path = tmp_path / "f9t_config.json5"
    path.write_text('{\n  // the receiver\n  "timepulse": {"freq": 1,},\n}\n')
    assert load_f9t_config(path) == {"timepulse": {"freq": 1}}


@pytest.mark.parametrize(
    ("load", "what"), [(load_hp_io_cfg, "hp_io config"), (load_f9t_config, "f9t config")]
)
def test_each_failure_names_the_file(
    load: Callable[[Path], dict[str, Any]], what: str, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(FileNotFoundError, match=f"^{what} {missing} does not exist$"):
        load(missing)
    broken = tmp_path / "broken.json"
    broken.write_text("{ not json")
    with pytest.raises(ValueError, match=f"^{what} {broken} is not valid JSON"):
        load(broken)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(ValueError, match=f"^{what} {listed} must hold a JSON5? object$"):
        load(listed)
    directory = tmp_path / "a_directory"
    directory.mkdir()
    with pytest.raises(ValueError, match=f"^cannot read {what} {directory}: "):
        load(directory)
