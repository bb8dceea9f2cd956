"""The one exception of the PFF modules, so that callers catch a single type whatever failed.

Every malformed input (a bad header, a truncated frame, an unknown data product, pixels of the
wrong size) raises `PffError`, whose message names file, offset and reason.
"""

from __future__ import annotations

import os


class PffError(ValueError):
    """A malformed PFF input; the message names file, offset and reason."""

    def __init__(
        self,
        reason: str,
        *,
        file: str | os.PathLike[str] | None = None,
        offset: int | None = None,
    ) -> None:
        self.reason = reason
        self.file = None if file is None else str(file)
        self.offset = offset
        where = self.file or "<stream>"
        at = "" if offset is None else f" at offset {offset}"
        super().__init__(f"{where}{at}: {reason}")
