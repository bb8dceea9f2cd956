"""The in-memory Frame every ingestion source produces and the hub stores (design.md §3).

INTERFACE SKELETON: the DaqData issue adds the one-time conversion to the wire PanoImage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from panoseti_appliance.products import DataProduct


@dataclass(slots=True)
class Frame:
    """One image of one module and data product, as ingested.

    `pixels` is the raw little-endian pixel bytes, exactly dp.bytes_per_image long. `file` and
    `frame_number` are what clients see in PanoImage (file name and index, `uds_<dp>` and a
    per-(module, dp) counter, or what an uploader sent). `received_ns` is time.time_ns() at ingest.
    """

    module_id: int
    dp: DataProduct
    header: dict[str, Any]
    pixels: bytes
    file: str
    frame_number: int
    received_ns: int


#: Where a source hands its frames. Called on the event loop; never blocks.
FrameSink = Callable[[Frame], None]
