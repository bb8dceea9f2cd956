"""The sample run shipped inside the package: the real recording, found by its file name."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from panoseti_appliance import pff, sample_data

REAL = (
    Path(__file__).parents[1]
    / "data"
    / "start_2025-08-02T05_31_36Z.dp_ph256.bpp_2.module_254.seqno_0.pff"
)
REAL_SHA256 = "ab6284d654b4243e81af586fcc8a882ce7c9627af3719115efef59086c2e1ab6"


def test_bundled_ph256_is_the_unmodified_real_recording() -> None:
    files = sample_data.sample_files()
    path = files["ph256"]
    assert path.parent == sample_data.SAMPLE_DIR
    assert path.name == REAL.name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == REAL_SHA256
    assert path.read_bytes() == REAL.read_bytes()
    assert pff.count_frames(path) == 88


def test_every_bundled_file_is_a_readable_pff_file() -> None:
    files = sample_data.sample_files()
    assert files, "no sample files found in the package"
    for dp, path in files.items():
        name = pff.parse_data_file_name(path)
        assert name is not None
        assert name.dp == dp
        frames = list(pff.iter_frames(path))
        assert frames, path
        assert all(pff.header_problem(f.header, f.dp) is None for f in frames)


def test_files_are_found_by_name(tmp_path: Path) -> None:
    shutil.copy(REAL, tmp_path / REAL.name)
    later = REAL.name.replace("seqno_0", "seqno_1")
    shutil.copy(REAL, tmp_path / later)
    movie = tmp_path / "start_2025-08-02T05_31_36Z.dp_img16.bpp_2.module_254.seqno_3.pff"
    movie.write_bytes(b"")
    for other in ("hk.pff", "notes.txt", "sim.dp_img8.module_1.seqno_x.pff"):
        (tmp_path / other).write_bytes(b"{}")
    assert sample_data.sample_files(tmp_path) == {
        "img16": movie,
        "ph256": tmp_path / REAL.name,
    }
    assert sample_data.sample_files(tmp_path / "missing") == {}
