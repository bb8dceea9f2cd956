"""The sample run bundled inside the package, so the simulator and demo need no path to work.

`data/sample/` holds the real ph256 recording of module 254 and a generated img16 movie
(tools/make_sample_movie.py). Files are found by parsing their names, so adding a product's file
to the directory is all it takes to ship it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from panoseti_appliance import pff

SAMPLE_DIR: Path = Path(str(resources.files("panoseti_appliance") / "data" / "sample"))


def sample_files(directory: Path = SAMPLE_DIR) -> dict[str, Path]:
    """Data product name → bundled PFF file (the lowest seqno when a product has several).

    `directory` exists for tests and tools that assemble a sample run elsewhere.
    """
    found: dict[str, tuple[int, Path]] = {}
    for path in sorted(directory.glob("*.pff")):
        name = pff.parse_data_file_name(path)
        if name is None:
            continue
        best = found.get(name.dp)
        if best is None or name.seqno < best[0]:
            found[name.dp] = (name.seqno, path)
    return {dp: path for dp, (_, path) in sorted(found.items())}
