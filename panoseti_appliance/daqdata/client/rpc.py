"""What both DaqData clients send and how they read a stream's end (docs/clients.md, "Python").

Requests, the rule for which status codes end a host's stream, and the reconnect back-off live
here once so that the sync and the asyncio client cannot drift apart.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import grpc

from panoseti_appliance._proto import daq_data_pb2
from panoseti_appliance.config.jsonfile import read_object
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
DEFAULT_SIM_HP_IO_CFG: Mapping[str, Any] = {
    "data_dir": "simulated_data_dir",
    "update_interval_seconds": 0.1,
    "force": True,
    "simulate_daq": True,
    "module_ids": [],
}
HP_IO_KEYS = ("data_dir", "update_interval_seconds", "force", "simulate_daq", "module_ids")
_IGNORED_HP_IO_KEYS = ("comments",)
MAX_MODULE_ID = 65535


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
) -> daq_data_pb2.StreamImagesRequest:
    """A StreamImagesRequest; the server judges the flags and interval (≤ 0 means fastest)."""
    return daq_data_pb2.StreamImagesRequest(
        stream_movie_data=bool(stream_movie_data),
        stream_pulse_height_data=bool(stream_pulse_height_data),
        update_interval_seconds=float(update_interval_seconds),
        module_ids=module_id_list(module_ids),
    )


def load_hp_io_cfg(path: str | os.PathLike[str]) -> dict[str, Any]:
    """An hp_io JSON file (`{"data_dir": …, "update_interval_seconds": …, …}`) as a dict."""
    return read_object(path, "hp_io config")


def init_request(
    hp_io_cfg: Mapping[str, Any], node_data_dir: str = "", *, simulate: bool | None = None
) -> daq_data_pb2.InitHpIoRequest:
    """An InitHpIoRequest from an hp_io config (docs/clients.md, "Methods (both clients)").

    `data_dir` comes from the config if non-empty, else the node's daq_config data_dir, else "".
    `update_interval_seconds` is required; `simulate` (init_sim) forces simulate_daq.
    """
    unknown = sorted(set(hp_io_cfg) - set(HP_IO_KEYS) - set(_IGNORED_HP_IO_KEYS))
    if unknown:
        raise ValueError(
            f"hp_io_cfg has unknown key(s) {unknown}: valid keys are {', '.join(HP_IO_KEYS)}"
        )
    if "update_interval_seconds" not in hp_io_cfg:
        raise ValueError(
            "hp_io_cfg is missing 'update_interval_seconds': add it, e.g. 0.1 (seconds)"
        )
    interval = hp_io_cfg["update_interval_seconds"]
    if isinstance(interval, bool) or not isinstance(interval, int | float) or math.isnan(interval):
        raise ValueError(f"hp_io_cfg 'update_interval_seconds' must be a number, got {interval!r}")
    return daq_data_pb2.InitHpIoRequest(
        data_dir=str(hp_io_cfg.get("data_dir") or node_data_dir or ""),
        update_interval_seconds=float(interval),
        force=bool(hp_io_cfg.get("force", False)),
        simulate_daq=True if simulate else bool(hp_io_cfg.get("simulate_daq", False)),
        module_ids=module_id_list(hp_io_cfg.get("module_ids", []), "hp_io_cfg 'module_ids'"),
    )


def upload_request(image: Any) -> daq_data_pb2.UploadImageRequest:
    """Wrap a PanoImage for UploadImages (an UploadImageRequest passes through unchanged).

    Call options are never put into the message (the original's sync client put wait_for_ready
    in it and always failed).
    """
    if isinstance(image, daq_data_pb2.UploadImageRequest):
        return image
    if isinstance(image, daq_data_pb2.PanoImage):
        return daq_data_pb2.UploadImageRequest(pano_image=image)
    raise ValueError(
        f"upload_images needs PanoImage or UploadImageRequest messages, got {type(image).__name__}"
    )


def describe_end(target: str, code: grpc.StatusCode, details: str) -> str:
    """One log line for a host whose stream ended."""
    return f"stream from {target} ended: {code.name}" + (f" ({details})" if details else "")
