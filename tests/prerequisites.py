"""Tests that need something outside the venv (a Debian package, the vendored nixpkgs lib).

Elsewhere such a test skips with one line saying what is missing; under `make test`, which
installs every prerequisite, `PANOSETI_SYSTEST_REQUIRED=1` is set and a missing one fails it.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

#: Set by `make test`: a missing prerequisite then fails the test instead of skipping it.
REQUIRED_ENV = "PANOSETI_SYSTEST_REQUIRED"


def required() -> bool:
    """Whether a missing prerequisite fails the test (under `make test`)."""
    return os.environ.get(REQUIRED_ENV, "") not in ("", "0")


def unavailable(message: str) -> NoReturn:
    """Skip the calling test in one line; fail it instead under `make test`."""
    if required():
        pytest.fail(f"{message} ({REQUIRED_ENV} is set)", pytrace=False)
    pytest.skip(message)
