"""Read a YAML config file and remember the line of every key, for error messages.

PyYAML's node graph carries start marks; building the data from the nodes ourselves keeps the line
of each key path (`('daqdata', 'listen', 1)` → 7) and lets us reject duplicate keys, which
`yaml.safe_load` silently resolves to the last one. pydantic-settings' YamlConfigSettingsSource
loads with `safe_load` and so keeps neither, which is why it is not used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from panoseti_appliance.config.files import FileProblems, read_text
from panoseti_appliance.config.sources import KeyPath, dotted


def parse_yaml(text: str, name: str) -> tuple[dict[str, Any], dict[KeyPath, int]]:
    """The mapping in `text` and the 1-based line of every key path; FileProblems if unusable."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        problems: list[str] = []
        lines: dict[KeyPath, int] = {}
        if node is None:
            return {}, lines
        if not isinstance(node, yaml.MappingNode):
            line = node.start_mark.line + 1
            raise FileProblems(
                [
                    f"{name}:{line}: the top level must be a mapping of sections (daqdata:, hp_io:, ublox:, logging:, observatory:)"
                ]
            )
        data = _build(loader, node, (), lines, problems, name)
        if problems:
            raise FileProblems(problems)
        assert isinstance(data, dict)
        return data, lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        what = exc.problem or exc.context or "syntax error"
        raise FileProblems([f"{name}:{line}: invalid YAML: {what}; fix the syntax"]) from None
    except yaml.YAMLError as exc:
        raise FileProblems([f"{name}: invalid YAML: {exc}"]) from None
    finally:
        loader.dispose()


def _build(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    path: KeyPath,
    lines: dict[KeyPath, int],
    problems: list[str],
    name: str,
) -> Any:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                problems.append(
                    f"{name}:{line}: {dotted(path) or 'top level'}: key {key!r} must be a name; quote it or fix the indentation"
                )
                continue
            if key in out:
                problems.append(
                    f"{name}:{line}: {dotted((*path, key))}: duplicate key (first at line {lines[(*path, key)]}); keep one"
                )
                continue
            lines[(*path, key)] = line
            out[key] = _build(loader, value_node, (*path, key), lines, problems, name)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            items.append(_build(loader, item, (*path, index), lines, problems, name))
        return items
    return loader.construct_object(node, deep=True)


def read_yaml(path: Path) -> tuple[dict[str, Any], dict[KeyPath, int]]:
    """Read and parse one YAML config file (see `parse_yaml`)."""
    return parse_yaml(read_text(path), str(path))
