"""`panoseti config`: check, show, import, schema and docs of the appliance configuration.

- `check [--config FILE ...]`: validate (each FILE on its own, with its drop-ins, the environment
  and `--set`) as the daemons do, F9T settings by InitF9t's own rules; print one line per layer
  read; on problems print them and exit 1.
- `show [--config FILE] [--json]`: the merged configuration and the origin of every value.
- `import FILE...`: the YAML equivalent of original panoseti_grpc JSON/JSON5 files.
- `schema`: the JSON Schema of the whole configuration.
- `docs [--output PATH] [--check]`: write (or check) the reference page docs/configuration.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from panoseti_appliance.cli.actions import add_action
from panoseti_appliance.config.errors import ConfigError, render_problems
from panoseti_appliance.config.files import FileProblems
from panoseti_appliance.config.loader import (
    DEFAULT_CONFIG_PATH,
    LoadedConfig,
    add_set_argument,
    build_config,
    deep_merge,
    leaves,
    load_config_details,
    overrides_from_args,
)
from panoseti_appliance.config.models import ApplianceConfig
from panoseti_appliance.config.originals import import_original
from panoseti_appliance.config.reference import render_markdown, repo_examples_dir
from panoseti_appliance.config.sources import CONFIG_ENV, Layer, dotted


def register(parser: argparse.ArgumentParser) -> None:
    """Fill the `panoseti config` parser."""
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION")
    sub.required = True

    check = add_action(sub, "check", "validate the configuration; print each problem", _check)
    check.add_argument(
        "--config",
        nargs="+",
        action="extend",
        metavar="FILE",
        help=f"main file(s) to check, each on its own (default: ${CONFIG_ENV}, else "
        f"{DEFAULT_CONFIG_PATH})",
    )
    add_set_argument(check)

    show = add_action(sub, "show", "print the merged configuration with each value's origin", _show)
    show.add_argument("--config", metavar="FILE", help="main config file")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    add_set_argument(show)

    imp = add_action(sub, "import", "print original JSON/JSON5 config files as YAML", _import)
    imp.add_argument("files", nargs="+", metavar="FILE", type=Path)

    add_action(sub, "schema", "print the JSON Schema of the configuration", _schema)

    docs = add_action(sub, "docs", "write the configuration reference (Markdown)", _docs)
    docs.add_argument("--output", type=Path, help="write here instead of stdout")
    docs.add_argument(
        "--examples", type=Path, default=repo_examples_dir(), help="directory of example files"
    )
    docs.add_argument("--check", action="store_true", help="exit 1 if --output is stale")


def _fail(err: ConfigError) -> int:
    print(render_problems(err), file=sys.stderr)
    return 1


def _print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


def _layer_line(layer: Layer) -> str:
    if layer.name == "environment":
        names = sorted({o for o in layer.origins.values() if o.startswith("env ")})
        return f"environment: {len(names)} variable(s): {', '.join(n[4:] for n in names)}"
    return f"read {layer.name}"


def _check(args: argparse.Namespace) -> int:
    files: list[str | None] = list(args.config) if args.config else [None]
    status = 0
    for file in files:
        try:
            loaded = load_config_details(file, overrides_from_args(args))
        except ConfigError as err:
            status = _fail(err)
            continue
        _print_warnings(loaded.warnings)
        print("defaults")
        for layer in loaded.layers:
            print(_layer_line(layer))
        print(f"ok: {file or 'configuration'} is valid")
    return status


def _show(args: argparse.Namespace) -> int:
    try:
        loaded = load_config_details(args.config, overrides_from_args(args))
    except ConfigError as err:
        return _fail(err)
    _print_warnings(loaded.warnings)
    if args.json:
        document = {
            "config": loaded.config.model_dump(mode="json"),
            "values": {
                dotted(path): {"value": value, "source": loaded.source_of(path)}
                for path, value in leaves(loaded.config.model_dump(mode="json"))
            },
        }
        print(json.dumps(document, indent=2))
    else:
        print(_show_text(loaded))
    return 0


def _show_text(loaded: LoadedConfig) -> str:
    lines = []
    for path, value in leaves(loaded.config.model_dump(mode="json")):
        lines.append(f"{dotted(path)} = {json.dumps(value)}  # {loaded.source_of(path)}")
    return "\n".join(lines)


def imported_yaml(files: list[Path]) -> tuple[str, list[str]]:
    """The YAML equivalent of original files (merged in order) and the import warnings."""
    layers: list[Layer] = []
    warnings: list[str] = []
    problems: list[str] = []
    for path in files:
        try:
            imported = import_original(path)
        except FileProblems as exc:
            problems.extend(exc.problems)
            continue
        layers.append(imported.layer())
        warnings.extend(imported.warnings)
    if problems:
        raise ConfigError(problems)
    config = build_config(layers)
    data = _as_set(config, layers)
    header = "# Imported by `panoseti config import` from:\n" + "".join(f"#   {p}\n" for p in files)
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None), warnings


def _as_set(config: ApplianceConfig, layers: list[Layer]) -> dict[str, Any]:
    """The validated values of only the keys the files set (normalised, e.g. upper-case uids)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = deep_merge(merged, layer.data)
    picked: dict[str, Any] = _pick(config.model_dump(mode="json"), merged)
    return picked


def _pick(values: Any, given: Any) -> Any:
    if isinstance(given, dict) and isinstance(values, dict):
        return {k: _pick(v, given[k]) for k, v in values.items() if k in given}
    if isinstance(given, list) and isinstance(values, list) and len(values) == len(given):
        return [_pick(v, g) for v, g in zip(values, given, strict=True)]
    return values


def _import(args: argparse.Namespace) -> int:
    try:
        text, warnings = imported_yaml(args.files)
    except ConfigError as err:
        return _fail(err)
    _print_warnings(warnings)
    sys.stdout.write(text)
    return 0


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(ApplianceConfig.model_json_schema(), indent=2))
    return 0


def _docs(args: argparse.Namespace) -> int:
    text = render_markdown(args.examples)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    if args.check:
        current = args.output.read_text() if args.output.is_file() else ""
        if current != text:
            print(
                f"{args.output} is stale; run `panoseti config docs --output {args.output}`",
                file=sys.stderr,
            )
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0
