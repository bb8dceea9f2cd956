"""Read an original PANOSETI JSON/JSON5 file as one object, with the line of every key.

The one reader of those files (daq_config.json, hp_io_config.json, f9t_config.json5, …), for the
loader and the clients alike, so a missing, unreadable or malformed file is reported the same way
wherever it is read: `FILE[:LINE]: what is wrong; the fix`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import json5

from panoseti_appliance.config.files import FileProblems, read_text
from panoseti_appliance.config.sources import KeyPath


def parse_json5(text: str, name: str) -> dict[str, Any]:
    """The object in `text` (JSON5: comments and trailing commas allowed); FileProblems if not."""
    try:
        data = json5.loads(text)
    except ValueError as exc:
        message = str(exc)
        match = re.match(r"<string>:(\d+)\s*(.*)", message)
        if match:
            raise FileProblems(
                [f"{name}:{match.group(1)}: invalid JSON5: {match.group(2)}; fix the syntax"]
            ) from None
        raise FileProblems([f"{name}: invalid JSON5: {message}; fix the syntax"]) from None
    if not isinstance(data, dict):
        raise FileProblems([f"{name}:1: the top level must be a JSON object"])
    return data


def key_lines(text: str, data: Any) -> dict[KeyPath, int]:
    """Best-effort 1-based line of each key path in JSON/JSON5 text (json5 keeps no marks).

    Keys are searched in document order, each after the previous one, so a nested key is found
    inside its parent; a list item gets the line of its first key (or of the list).
    """
    lines: dict[KeyPath, int] = {}

    def line_of(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    def walk(node: Any, path: KeyPath, pos: int) -> int:
        if isinstance(node, dict):
            for key, value in node.items():
                pattern = re.compile(r"(?<![\w$])([\"']?)" + re.escape(str(key)) + r"\1\s*:")
                match = pattern.search(text, pos)
                if match:
                    pos = match.end()
                    lines[(*path, key)] = line_of(match.start())
                pos = walk(value, (*path, key), pos)
        elif isinstance(node, list):
            for index, item in enumerate(node):
                start = pos
                pos = walk(item, (*path, index), pos)
                if isinstance(item, dict) and item:
                    first = (*path, index, next(iter(item)))
                    if first in lines:
                        lines[(*path, index)] = lines[first]
                if (*path, index) not in lines and path in lines:
                    lines[(*path, index)] = max(lines[path], line_of(start))
        return pos

    walk(data, (), 0)
    return lines


def read_json5(path: Path) -> tuple[dict[str, Any], dict[KeyPath, int]]:
    """The object in the file at `path` and the line of each key path; FileProblems if unusable."""
    text = read_text(path)
    data = parse_json5(text, str(path))
    return data, key_lines(text, data)
