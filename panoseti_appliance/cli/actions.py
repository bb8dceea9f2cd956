"""The actions of a `panoseti` command group (`panoseti config check`, `panoseti pff info`, …).

`panoseti` runs `args.func(args)` once the arguments are parsed, so every action's parser must
carry its handler; making the parser and binding the handler in one call keeps the two together.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

Handler = Callable[[argparse.Namespace], int]


def add_action(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    handler: Handler,
    **options: Any,
) -> argparse.ArgumentParser:
    """The parser of action `name`, which runs `handler`; `options` go to `add_parser`."""
    parser = actions.add_parser(name, help=help_text, **options)
    parser.set_defaults(func=handler)
    return parser
