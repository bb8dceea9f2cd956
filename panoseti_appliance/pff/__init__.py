"""PFF (PanoSETI File Format) data files: read, follow, write, name and time their frames.

A PFF file is a bare concatenation of frames, each a JSON header, the bytes `\\n\\n*` and the raw
pixels of one image, with no file header, index or length prefix; the data product (and so the
pixel count) comes from the file's name (docs/pff.md).

Modules: `layout` (constants every reader and writer shares), `errors` (`PffError`), `headers`
(`header_problem`, the one validity rule of every ingest path), `frames` (parse, iterate and
count frames), `tail` (`FileTail`, the newest frame of a growing file), `write` (producer-exact
frame bytes), `clocks` (White Rabbit and host time) and `names` (data file and run directory
names). Everything public is re-exported here, so callers import from `panoseti_appliance.pff`.
"""

from panoseti_appliance.pff.clocks import (
    TAI_UTC_OFFSET_S,
    WrTime,
    header_host_time_us,
    header_time_fields,
    header_wr_time,
    wr_to_unix,
)
from panoseti_appliance.pff.errors import PffError
from panoseti_appliance.pff.frames import (
    PffFrame,
    count_frames,
    iter_frames,
    learn_frame_size,
    parse_frame,
    resolve_data_product,
)
from panoseti_appliance.pff.headers import MAX_HEADER_DEPTH, header_problem, wire_problem
from panoseti_appliance.pff.layout import HEADER_END, MAX_HEADER_BYTES, QUABO_KEYS, TIME_FIELDS
from panoseti_appliance.pff.names import (
    DataFileName,
    make_data_file_name,
    make_sim_file_name,
    parse_data_file_name,
    parse_run_dir_name,
    parse_start_time,
)
from panoseti_appliance.pff.tail import FileTail
from panoseti_appliance.pff.write import HeaderLayout, encode_frame, format_header

__all__ = [
    "HEADER_END",
    "MAX_HEADER_BYTES",
    "MAX_HEADER_DEPTH",
    "QUABO_KEYS",
    "TAI_UTC_OFFSET_S",
    "TIME_FIELDS",
    "DataFileName",
    "FileTail",
    "HeaderLayout",
    "PffError",
    "PffFrame",
    "WrTime",
    "count_frames",
    "encode_frame",
    "format_header",
    "header_host_time_us",
    "header_problem",
    "header_time_fields",
    "header_wr_time",
    "iter_frames",
    "learn_frame_size",
    "make_data_file_name",
    "make_sim_file_name",
    "parse_data_file_name",
    "parse_frame",
    "parse_run_dir_name",
    "parse_start_time",
    "resolve_data_product",
    "wire_problem",
    "wr_to_unix",
]
