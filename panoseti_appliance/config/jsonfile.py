"""Read the original PANOSETI JSON files (hp_io_config.json, f9t_config.json5) as one object.

One reader for every such file, so a missing, unreadable or malformed file is reported the same
way whichever command or client reads it: the kind of file, its absolute path and what is wrong.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def read_object(
    path: str | os.PathLike[str],
    what: str,
    *,
    loads: Callable[[str], Any] = json.loads,
    syntax: str = "JSON",
) -> dict[str, Any]:
    """The object in the file at `path`; `what` names the file in errors (e.g. "hp_io config").

    A missing file raises FileNotFoundError, anything else ValueError, each naming the file.
    """
    file = Path(path).expanduser().absolute()
    try:
        text = file.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {file} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {what} {file}: {exc}") from None
    try:
        data = loads(text)
    except ValueError as exc:
        raise ValueError(f"{what} {file} is not valid {syntax}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what} {file} must hold a {syntax} object")
    return data
