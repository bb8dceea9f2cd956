"""pydantic models of every appliance setting (design.md §4).

SKELETON: field names and defaults are fixed here so the daemons can be built against them; the
configuration issue adds bounds, descriptions, cross-field validators and the original formats.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DATA_PRODUCT_NAMES = ("img8", "img16", "ph256", "ph1024")
DataProductName = Literal["img8", "img16", "ph256", "ph1024"]
SimulationMode = Literal["filesystem_poll", "filesystem_pipe", "uds", "rpc"]


def _all_products() -> list[DataProductName]:
    return ["img8", "img16", "ph256", "ph1024"]


def _simulated_uds_products() -> list[DataProductName]:
    return ["ph256", "img16"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class HashpipeSourceConfig(_Section):
    """The Hashpipe Unix-socket source (spec daqdata.md §C.3)."""

    enabled: bool = True
    socket_template: str = "/tmp/hashpipe_grpc.dp_{dp}.sock"
    data_products: list[DataProductName] = Field(default_factory=_all_products)
    socket_mode: int = 0o660
    socket_group: str | None = None
    receive_buffer_bytes: int = 1 << 20


class FilesystemPollConfig(_Section):
    enabled: bool = False


class FilesystemPipeConfig(_Section):
    enabled: bool = False
    pipe_name: str = "read_status_2"


class SimulatorConfig(_Section):
    """The DAQ simulator used when InitHpIo has simulate_daq (spec daqdata.md §D)."""

    mode: SimulationMode = "uds"
    module_ids: list[int] = Field(default_factory=lambda: [224])
    movie_type: Literal["img8", "img16"] = "img16"
    ph_type: Literal["ph256", "ph1024"] = "ph256"
    # None means the sample run bundled inside the package.
    movie_pff_path: Path | None = None
    ph_pff_path: Path | None = None
    update_interval_seconds: float = 0.1
    replay_original_timestamps: bool = False
    sim_data_dir: Path = Path("/tmp/panoseti-sim")
    sim_run_dir_template: str = "module_{module_id}/obs_SIMULATE"
    daq_active_file: str = "module_{module_id}.daq-active"
    frames_per_pff: int = 100
    frame_limit: int = -1
    uds_data_products: list[DataProductName] = Field(default_factory=_simulated_uds_products)
    # gRPC target of the rpc simulator; None means this daemon's first unix:// listen address.
    rpc_target: str | None = None


class DaqDataConfig(_Section):
    """The DaqData daemon."""

    listen: list[str] = Field(
        default_factory=lambda: ["0.0.0.0:50051", "unix:///run/panoseti/daqdata.sock"]
    )
    max_concurrent_rpcs: int = 100
    min_hp_io_update_interval_seconds: float = 0.001
    max_client_update_interval_seconds: float = 60.0
    shutdown_grace_period: float = 5.0
    hp_io_stop_timeout: float = 5.0
    hp_io_start_timeout: float = 10.0
    init_from_default: bool = True
    require_hashpipe_process: bool = False
    hashpipe: HashpipeSourceConfig = Field(default_factory=HashpipeSourceConfig)
    filesystem_poll: FilesystemPollConfig = Field(default_factory=FilesystemPollConfig)
    filesystem_pipe: FilesystemPipeConfig = Field(default_factory=FilesystemPipeConfig)
    simulator: SimulatorConfig = Field(default_factory=SimulatorConfig)
    stats_log_interval_seconds: float = 60.0


class HpIoConfig(_Section):
    """The default InitHpIo payload, applied at start when daqdata.init_from_default is true."""

    data_dir: str = "/mnt/panoseti"
    update_interval_seconds: float = 0.1
    simulate_daq: bool = False
    force: bool = False
    module_ids: list[int] = Field(default_factory=list)


class PositionConfig(_Section):
    format: Literal["LLH", "ECEF"] = "LLH"
    lat_deg: float | None = None
    lon_deg: float | None = None
    height_m: float | None = None
    x_m: float | None = None
    y_m: float | None = None
    z_m: float | None = None
    acc_m: float = 0.05


class CfgKeySetting(_Section):
    key: str
    value: Any


class ChipConfig(_Section):
    """One receiver; its keys override the general f9t settings (the f9t_config merge rule)."""

    uid: str
    device: str | None = None
    position: PositionConfig | None = None
    cfg_key_settings: list[CfgKeySetting] | None = None


class UbloxConfig(_Section):
    """The UbloxControl daemon and the ZED-F9T settings it applies."""

    listen: list[str] = Field(
        default_factory=lambda: ["0.0.0.0:50052", "unix:///run/panoseti/ublox.sock"]
    )
    device: str = "/dev/ublox-f9t"
    baud: int = 115200
    apply_to_layers: list[str] = Field(default_factory=lambda: ["RAM"])
    verify_layer: str = "RAM"
    cfg_key_settings: list[CfgKeySetting] = Field(default_factory=list)
    position: PositionConfig | None = None
    chips: list[ChipConfig] = Field(default_factory=list)
    # uid of the chip (from `chips`) to initialise at start; None means the first chip, if any.
    chip_uid: str | None = None
    init_on_start: bool = False
    max_read_queue_size: int = 200
    shutdown_grace_period: float = 0.5
    ack_timeout_seconds: float = 2.5
    poll_timeout_seconds: float = 1.0


class LoggingConfig(_Section):
    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    # "auto": journald when run by systemd (JOURNAL_STREAM set), else plain text on stderr.
    target: Literal["auto", "stderr", "journald"] = "auto"


class ApplianceConfig(_Section):
    """The whole configuration of one DAQ node."""

    daqdata: DaqDataConfig = Field(default_factory=DaqDataConfig)
    hp_io: HpIoConfig = Field(default_factory=HpIoConfig)
    ublox: UbloxConfig = Field(default_factory=UbloxConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
