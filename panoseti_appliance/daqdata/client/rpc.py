"""What both DaqData clients send and how they read a stream's end (docs/clients.md, "Python").

Requests, the rule for which status codes end a host's stream, and the reconnect back-off live
here once so that the sync and the asyncio client cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import grpc

from panoseti_appliance._proto import daq_data_pb2
from panoseti_appliance.config.importers import read_hp_io_config
from panoseti_appliance.config.models import HpIoConfig
from panoseti_appliance.daqdata.client.encoding import encode_image
from panoseti_appliance.daqdata.pixels import PACKED, Encoding
from panoseti_appliance.retry import RetryPolicy

#: Ping deadline (docs/daqdata.md, "Ping"): any error within it means "host down".
PING_TIMEOUT_SECONDS = 0.3
#: Images buffered between the per-host readers and the consumer.
STREAM_QUEUE_SIZE = 256
#: Requests buffered per host by upload_images (gRPC flow control paces the rest).
UPLOAD_QUEUE_SIZE = 64
#: How long an upload waits for room in a host's full queue before checking that host again.
UPLOAD_FULL_WAIT_SECONDS = 0.01
#: Per-call deadline of stream_images: 10 h, as in the original.
DEFAULT_STREAM_TIMEOUT = 36000.0

#: A host whose stream ends with one of these has ended (logged, recorded, not raised).
ENDING_CODES = frozenset(
    {grpc.StatusCode.OK, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE}
)
#: With reconnect=True these re-issue the same StreamImages after a back-off: the server was
#: restarted or reconfigured under the client (docs/daqdata.md, "StreamImages").
RETRY_CODES = frozenset({grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE})
#: The back-off between those re-subscriptions: 0.2 s doubling up to 4 s, reset by an image.
RECONNECT_RETRY = RetryPolicy(initial=0.2, factor=2.0, max_delay=4.0)

#: The packaged simulate hp_io config (the original read `hp_io_config_simulate.json` from CWD).
DEFAULT_SIM_HP_IO_CFG = HpIoConfig(
    data_dir=Path("simulated_data_dir"),
    update_interval_seconds=0.1,
    force=True,
    simulate_daq=True,
    module_ids=[],
)
MAX_MODULE_ID = 65535
MAX_UINT32 = 2**32 - 1


def module_id_list(module_ids: Iterable[int] | None, field: str = "module_ids") -> list[int]:
    """Validated module ids (0..65535) for a request."""
    out: list[int] = []
    for value in module_ids or ():
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{field} must hold integers, got {value!r}")
        if not 0 <= value <= MAX_MODULE_ID:
            raise ValueError(f"{field} entry {value} is outside 0..{MAX_MODULE_ID}")
        out.append(value)
    return out


def stream_request(
    stream_movie_data: bool,
    stream_pulse_height_data: bool,
    update_interval_seconds: float,
    module_ids: Iterable[int] | None = (),
    *,
    pixel_encoding: Encoding = PACKED,
    every_frame: bool = False,
    max_frames_per_response: int = 1,
) -> daq_data_pb2.StreamImagesRequest:
    """A StreamImagesRequest; the server judges the flags and interval (≤ 0 means fastest).

    `max_frames_per_response` > 1 only means something to an every-frame stream, so it is
    refused without `every_frame` rather than silently ignored.
    """
    frames = positive_int(max_frames_per_response, "max_frames_per_response")
    if frames > 1 and not every_frame:
        raise ValueError("max_frames_per_response > 1 needs every_frame=True")
    return daq_data_pb2.StreamImagesRequest(
        stream_movie_data=bool(stream_movie_data),
        stream_pulse_height_data=bool(stream_pulse_height_data),
        update_interval_seconds=float(update_interval_seconds),
        module_ids=module_id_list(module_ids),
        pixel_encoding=pixel_encoding,
        every_frame=bool(every_frame),
        max_frames_per_response=frames if every_frame else 0,
    )


def positive_int(value: int, field: str, limit: int = MAX_UINT32) -> int:
    """`value` checked to be an integer in 1..limit."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise ValueError(f"{field} must be an integer from 1 to {limit}, got {value!r}")
    return value


def hp_io_settings(cfg: HpIoConfig | Mapping[str, Any], *, simulate: bool = False) -> HpIoConfig:
    """The hp_io config of an init call, a dict read as an hp_io file named `hp_io_cfg`.

    `simulate` (init_sim) sets simulate_daq before the checks, which then accept any data_dir.
    """
    if isinstance(cfg, HpIoConfig):
        return cfg.model_copy(update={"simulate_daq": True}) if simulate else cfg
    return read_hp_io_config({**cfg, "simulate_daq": True} if simulate else cfg)


def init_request(
    hp_io: HpIoConfig, node_data_dir: Path | None = None
) -> daq_data_pb2.InitHpIoRequest:
    """An InitHpIoRequest from an hp_io config (docs/clients.md, "Methods (both clients)").

    `data_dir` is the config's when it gives one, else the node's daq_config data_dir, else "".
    """
    data_dir = hp_io.data_dir if "data_dir" in hp_io.model_fields_set else node_data_dir
    return daq_data_pb2.InitHpIoRequest(
        data_dir=str(data_dir or ""),
        update_interval_seconds=hp_io.update_interval_seconds,
        force=hp_io.force,
        simulate_daq=hp_io.simulate_daq,
        module_ids=hp_io.module_ids,
    )


def upload_image(image: Any, encoding: Encoding | None = None) -> daq_data_pb2.PanoImage:
    """A PanoImage to upload, its pixels re-encoded to `encoding` (None: as given)."""
    if not isinstance(image, daq_data_pb2.PanoImage):
        raise ValueError(
            "upload_images needs PanoImage or UploadImageRequest messages, got "
            f"{type(image).__name__}"
        )
    return image if encoding is None else encode_image(image, encoding)


def batch_request(images: list[daq_data_pb2.PanoImage]) -> daq_data_pb2.UploadImageRequest:
    """One UploadImageRequest of `images` (at least one): the first, then more_images.

    Call options are never put into the message (the original's sync client put wait_for_ready
    in it and always failed)."""
    first, *rest = images
    return daq_data_pb2.UploadImageRequest(pano_image=first, more_images=rest)


def describe_end(target: str, code: grpc.StatusCode, details: str) -> str:
    """One log line for a host whose stream ended."""
    return f"stream from {target} ended: {code.name}" + (f" ({details})" if details else "")
