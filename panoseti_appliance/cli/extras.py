"""The optional extras of the package, so a command that needs one names it instead of a traceback.

The core install is what the daemons need; a node that only runs them has no matplotlib, pandas,
seaborn or rich. A command that imports one of those (`panoseti daq view` draws with matplotlib)
then fails with ModuleNotFoundError, which `panoseti` turns into one line naming the extra.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

DISTRIBUTION = "panoseti-appliance"

#: Top-level module → the extra of pyproject.toml that installs it. A table rather than a lookup in
#: the installed metadata, which names distributions, not modules, and knows nothing of a package
#: that is not installed; tests/unit/test_cli_extras.py checks it against that metadata.
EXTRA_OF_MODULE: dict[str, str] = {
    "matplotlib": "plot",
    "seaborn": "plot",
    "pandas": "client",
    "rich": "client",
}


def install_hint(exc: ModuleNotFoundError) -> str | None:
    """One line saying what to install for the missing module, None if no extra provides it."""
    module = (exc.name or "").partition(".")[0]
    extra = EXTRA_OF_MODULE.get(module)
    if extra is None:
        return None
    return (
        f"panoseti: this command needs {module}, from the '{extra}' extra: "
        f"pip install '{DISTRIBUTION}[{extra}]'"
    )


@contextlib.contextmanager
def extras_explained() -> Iterator[None]:
    """Exit with the install hint (status 1) when a module of an extra is missing; re-raise others."""
    try:
        yield
    except ModuleNotFoundError as exc:
        hint = install_hint(exc)
        if hint is None:
            raise
        raise SystemExit(hint) from None
