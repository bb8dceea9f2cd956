"""pydantic models of every appliance setting.

Field names are a contract: the daemons, the NixOS module and operators' files use them. Every
field is typed, bounded and described; the descriptions are the reference documentation
(docs/configuration.md is generated from this schema). Rules that involve more than one field are
model validators raising `FieldProblem`, whose message says how to fix the file. The ZED-F9T
settings (`ublox`) are judged by the rules InitF9t applies (`ublox.rules`, `ublox.values`), so a
configuration that loads is one InitF9t accepts.

`ApplianceConfig` is a pydantic-settings `BaseSettings` whose sources are always explicit:
constructed directly it holds its defaults and keyword arguments, never the environment;
`ApplianceConfig.from_sources` validates the layers the loader assembled (see `config.loader`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from panoseti_appliance.config.checks import (
    FieldProblem,
    check_absolute,
    check_listen_address,
    check_module_ids,
    check_template,
    check_unique,
    check_within_roots,
    every_problem,
    format_module_range,
    parse_module_range,
)
from panoseti_appliance.config.tls import check_ca, check_cert_and_key, readable_file
from panoseti_appliance.ublox import rules
from panoseti_appliance.ublox.values import coerce_value, normalise_key

DATA_PRODUCT_NAMES = ("img8", "img16", "ph256", "ph1024")
DataProductName = Literal["img8", "img16", "ph256", "ph1024"]
SimulationMode = Literal["filesystem_poll", "filesystem_pipe", "uds", "rpc"]
LayerName = Literal["RAM", "BBR", "FLASH"]


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


UpperLayer = Annotated[LayerName, BeforeValidator(rules.layer)]
#: `minItems` and `minLength` document (in the schema and docs) what the rules enforce.
Layers = Annotated[
    list[UpperLayer], BeforeValidator(rules.layer_list), Field(json_schema_extra={"minItems": 1})
]
Baud = Annotated[int, BeforeValidator(rules.baud)]
ReceiverUid = Annotated[str, BeforeValidator(rules.receiver_uid)]
DevicePath = Annotated[
    str, BeforeValidator(rules.device), Field(json_schema_extra={"minLength": 1})
]
ModuleId = Annotated[int, Field(ge=0, le=65535)]
#: Default of daqdata.max_upload_header_bytes (16 KiB).
UPLOAD_HEADER_BYTES = 16 * 1024
#: Default gRPC message size limit of both daemons, each way: gRPC's own receive default.
GRPC_MESSAGE_BYTES = 4 * 1024 * 1024
#: Room a streamed image needs besides its `header`: pixels (1024 values of up to 5 bytes as
#: varints), `file` (up to 4096 bytes) and the other fields.
IMAGE_BODY_BYTES = 64 * 1024
Seconds = Annotated[float, Field(allow_inf_nan=False)]


def _absolute_dir(path: Path, info: ValidationInfo) -> Path:
    return check_absolute(path, info.field_name or "path")


#: A directory on a DAQ node, which its daemon uses as given (never against its working dir).
NodeDir = Annotated[Path, AfterValidator(_absolute_dir)]


def model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class a field annotation holds (directly, optional or in a container), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = model_in(arg)
        if found is not None:
            return found
    return None


def _all_products() -> list[DataProductName]:
    return ["img8", "img16", "ph256", "ph1024"]


def _simulated_uds_products() -> list[DataProductName]:
    return ["ph256", "img16"]


def _ram_only() -> list[LayerName]:
    return ["RAM"]


def _metrics_address(address: str | None) -> str | None:
    """A Prometheus endpoint is plain HTTP on TCP: `HOST:PORT` only."""
    if address is None:
        return None
    checked = check_listen_address(address)
    if checked.startswith(("unix:", "unix-abstract:", "systemd:")):
        raise ValueError(
            f"{address!r}: the metrics endpoint listens on TCP only; give HOST:PORT, "
            "e.g. '127.0.0.1:9464'"
        )
    return checked


#: Where a daemon serves Prometheus metrics, or None (off).
MetricsAddress = Annotated[str | None, AfterValidator(_metrics_address)]


def _listen_addresses(addresses: list[str], what: str) -> list[str]:
    out = [check_listen_address(a) for a in addresses]
    check_unique(out, what)
    return out


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class _DaemonSection(_Section):
    """What the sections of both daemons share: the gRPC message limits and the metrics
    endpoint."""

    metrics_listen: MetricsAddress = Field(
        default=None,
        description="Prometheus endpoint (`HOST:PORT`, plain HTTP, e.g. `127.0.0.1:9464` for "
        "DaqData, `127.0.0.1:9465` for UbloxControl); off when unset. Keep it on loopback or a "
        "monitoring network (docs/monitoring.md).",
    )
    max_receive_message_bytes: int = Field(
        default=GRPC_MESSAGE_BYTES,
        ge=1 << 20,
        le=1 << 30,
        description="Largest gRPC message the daemon accepts (for DaqData, an UploadImages "
        "image); a bigger one is RESOURCE_EXHAUSTED. Raise it only if requests are refused for "
        "size.",
    )
    max_send_message_bytes: int = Field(
        default=GRPC_MESSAGE_BYTES,
        ge=1 << 20,
        le=1 << 30,
        description="Largest gRPC message the daemon sends; keep it at or below what clients "
        "accept (4 MiB by default). DaqData's must stay above max_upload_header_bytes plus "
        "64 KiB.",
    )

    def grpc_options(self) -> list[tuple[str, int]]:
        """The server's message size limits as gRPC options."""
        return [
            ("grpc.max_receive_message_length", self.max_receive_message_bytes),
            ("grpc.max_send_message_length", self.max_send_message_bytes),
        ]


class HashpipeSourceConfig(_Section):
    """The Hashpipe Unix-socket source: one listening socket per product (docs/ingestion.md)."""

    enabled: bool = Field(
        default=True, description="Ingest frames Hashpipe writes to the per-product Unix sockets."
    )
    socket_template: str = Field(
        default="/tmp/hashpipe_grpc.dp_{dp}.sock",
        min_length=1,
        description="Socket path per data product; `{dp}` becomes img8, img16, ph256 or ph1024. "
        "Hashpipe has `/tmp/hashpipe_grpc.dp_%s.sock` compiled in, so change it only for tests.",
    )
    data_products: list[DataProductName] = Field(
        default_factory=_all_products,
        description="Data products whose socket is created and read.",
    )
    socket_mode: int = Field(
        default=0o660,
        ge=0,
        le=0o777,
        description="Permission bits of self-bound sockets (Hashpipe needs write permission; "
        "decimal in YAML, e.g. 432 for 0660).",
    )
    socket_group: str | None = Field(
        default=None,
        description="Group given to self-bound sockets (shared with Hashpipe's user); "
        "null keeps the daemon's group.",
    )
    receive_buffer_bytes: int = Field(
        default=1 << 20,
        ge=204_800,
        le=1 << 30,
        description="SO_RCVBUF of each socket; at least the original's 204800 bytes.",
    )
    read_timeout_seconds: Seconds = Field(
        default=600.0,
        gt=0,
        le=86_400,
        description="The original's uds `read_timeout`, kept so imported files validate. The "
        "appliance never closes an idle Hashpipe connection because of it.",
    )
    max_connections_per_socket: int = Field(
        default=64,
        ge=1,
        le=4096,
        description="Producer connections one socket holds at once (Hashpipe makes one); a "
        "connection beyond it is closed at once and counted as refused_connections. Raise it "
        "if a legitimate producer is refused.",
    )

    @field_validator("socket_template")
    @classmethod
    def _template(cls, value: str) -> str:
        check_absolute(Path(value), "socket_template", "/tmp/hashpipe_grpc.dp_{dp}.sock")
        return check_template(value, {"dp"}, {"dp"}, "socket_template")

    @field_validator("data_products")
    @classmethod
    def _products(cls, value: list[DataProductName]) -> list[DataProductName]:
        check_unique(value, "data_products")
        return value


class FilesystemPollConfig(_Section):
    """Sample the newest frame of each run file by polling `hp_io.data_dir` (docs/ingestion.md)."""

    enabled: bool = Field(
        default=False, description="Poll the run directories under hp_io.data_dir."
    )


class FilesystemPipeConfig(_Section):
    """Read frames when Hashpipe signals them on a named pipe per run dir (docs/ingestion.md)."""

    enabled: bool = Field(
        default=False, description="Watch the read-status FIFOs in the active run dirs."
    )
    pipe_name: str = Field(
        default="read_status_2",
        min_length=1,
        pattern=r"^[^/\x00]+$",
        description="File name of the FIFO in each module's active run directory.",
    )


class SimulatorConfig(_Section):
    """The DAQ simulator used when InitHpIo has simulate_daq (docs/simulator.md)."""

    mode: SimulationMode = Field(
        default="uds",
        description="How simulated frames reach the server: `uds` emulates Hashpipe (needs "
        "daqdata.hashpipe.enabled), `filesystem_poll`/`filesystem_pipe` write run files (need "
        "that source enabled), `rpc` uploads over a unix:// gRPC listener.",
    )
    module_ids: list[ModuleId] = Field(
        default_factory=lambda: [224],
        min_length=1,
        description="Module ids the simulated frames carry (0..65535).",
    )
    movie_type: Literal["img8", "img16"] = Field(
        default="img16", description="Data product of movie_pff_path."
    )
    ph_type: Literal["ph256", "ph1024"] = Field(
        default="ph256", description="Data product of ph_pff_path."
    )
    movie_pff_path: Path | None = Field(
        default=None,
        description="PFF file replayed as movie frames; null uses the bundled sample run.",
    )
    ph_pff_path: Path | None = Field(
        default=None,
        description="PFF file replayed as pulse-height frames; null uses the bundled sample run.",
    )
    update_interval_seconds: Seconds = Field(
        default=0.1,
        ge=0,
        le=3600,
        description="Pause between simulated steps (one movie and one PH frame per module); 0 "
        "means as fast as possible.",
    )
    replay_original_timestamps: bool = Field(
        default=False,
        description="Keep the recorded header times instead of stamping the emission time.",
    )
    sim_data_dir: Path = Field(
        default=Path("/tmp/panoseti-sim"),
        description="Directory the filesystem modes write run files into (replaces "
        "hp_io.data_dir while simulating); absolute when the daemon simulates with a filesystem "
        "source enabled.",
    )
    sim_run_dir_template: str = Field(
        default="module_{module_id}/obs_SIMULATE",
        min_length=1,
        description="Run directory under sim_data_dir, relative; `{module_id}` is required.",
    )
    daq_active_file: str = Field(
        default="module_{module_id}.daq-active",
        min_length=1,
        description="Marker file created in each run directory; `{module_id}` may be used.",
    )
    frames_per_pff: int = Field(
        default=100,
        ge=1,
        le=10_000_000,
        description="Frames per simulated PFF file before roll-over.",
    )
    frame_limit: int = Field(
        default=-1, ge=-1, description="Stop after this many steps; -1 means never stop."
    )
    uds_data_products: list[DataProductName] = Field(
        default_factory=_simulated_uds_products,
        min_length=1,
        description="Sockets the uds simulator connects to and feeds.",
    )
    rpc_target: str | None = Field(
        default=None,
        description="gRPC target of the rpc simulator; null means this daemon's first "
        "unix:// listen address.",
    )

    @field_validator("module_ids")
    @classmethod
    def _modules(cls, value: list[int]) -> list[int]:
        return check_module_ids(value, "module_ids")

    @field_validator("uds_data_products")
    @classmethod
    def _products(cls, value: list[DataProductName]) -> list[DataProductName]:
        check_unique(value, "uds_data_products")
        return value

    @field_validator("sim_run_dir_template")
    @classmethod
    def _run_dir(cls, value: str) -> str:
        if value.startswith("/"):
            raise ValueError(
                f"sim_run_dir_template {value!r} must be relative to sim_data_dir; drop the "
                "leading '/'"
            )
        return check_template(value, {"module_id"}, {"module_id"}, "sim_run_dir_template")

    @field_validator("daq_active_file")
    @classmethod
    def _marker(cls, value: str) -> str:
        if "/" in value:
            raise ValueError(f"daq_active_file {value!r} must be a file name without '/'")
        return check_template(value, {"module_id"}, set(), "daq_active_file")


class DaqDataConfig(_DaemonSection):
    """The DaqData daemon: where it listens, its limits and how it acquires frames."""

    listen: list[str] = Field(
        default_factory=lambda: ["127.0.0.1:50051", "unix:///run/panoseti/daqdata.sock"],
        min_length=1,
        description="gRPC listen addresses: `HOST:PORT` (clients expect port 50051), "
        "`unix:///PATH` (the rpc simulator uploads through the first unix one) and "
        "`systemd:NAME` (the sockets a socket unit passes with FileDescriptorName=NAME). A "
        "socket systemd passes bound to a listed address is served instead of binding it.",
    )
    max_concurrent_rpcs: int = Field(
        default=100, ge=1, le=10_000, description="Most StreamImages readers served at once."
    )
    min_hp_io_update_interval_seconds: Seconds = Field(
        default=0.001,
        gt=0,
        le=60,
        description="Smallest update_interval_seconds InitHpIo accepts.",
    )
    max_client_update_interval_seconds: Seconds = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="Longest StreamImages interval; longer requests are clamped to it.",
    )
    shutdown_grace_period: Seconds = Field(
        default=5.0, ge=0, le=300, description="Seconds in-flight RPCs get to finish on shutdown."
    )
    hp_io_stop_timeout: Seconds = Field(
        default=5.0,
        gt=0,
        le=300,
        description="Seconds to stop the old hp_io on re-init before its tasks are cancelled.",
    )
    hp_io_start_timeout: Seconds = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Seconds the new hp_io sources get to become ready.",
    )
    hp_io_restart_backoff_seconds: list[Annotated[float, Field(gt=0, le=3600)]] = Field(
        default_factory=lambda: [1.0, 2.0, 5.0, 10.0, 30.0, 60.0],
        min_length=1,
        max_length=32,
        description="Pauses before each automatic restart of hp_io after it failed on its own "
        "(a source or the simulator died, or the start at boot failed); the last one repeats "
        "until hp_io runs or an InitHpIo replaces it.",
    )
    init_from_default: bool = Field(
        default=True, description="Start ingestion at boot from the `hp_io` section."
    )
    require_hashpipe_process: bool = Field(
        default=False,
        description="InitHpIo (without simulate_daq) fails unless a process named `hashpipe` runs.",
    )
    hashpipe: HashpipeSourceConfig = Field(
        default_factory=HashpipeSourceConfig, description="Hashpipe Unix-socket source."
    )
    filesystem_poll: FilesystemPollConfig = Field(
        default_factory=FilesystemPollConfig, description="Run-file polling source."
    )
    filesystem_pipe: FilesystemPipeConfig = Field(
        default_factory=FilesystemPipeConfig, description="Named-pipe signalled source."
    )
    simulator: SimulatorConfig = Field(
        default_factory=SimulatorConfig, description="The DAQ simulator (InitHpIo simulate_daq)."
    )
    stats_log_interval_seconds: Seconds = Field(
        default=60.0, gt=0, le=86_400, description="How often ingest and drop counters are logged."
    )
    allowed_data_roots: list[NodeDir] = Field(
        default_factory=list,
        max_length=64,
        description="Directories InitHpIo's data_dir (and hp_io.data_dir) must lie in, after "
        "resolving symlinks and `..`; absolute paths. Empty means hp_io.data_dir alone.",
    )
    max_upload_header_bytes: int = Field(
        default=UPLOAD_HEADER_BYTES,
        ge=1024,
        le=1 << 20,
        description="Largest serialized `header` Struct an UploadImages image may carry; "
        "bigger images are refused, so no streamed response outgrows a client's 4 MB limit.",
    )
    max_streams_per_peer: int = Field(
        default=32,
        ge=1,
        le=10_000,
        description="StreamImages streams one client host may hold at once (every unix-socket "
        "client counts as one host); one more is RESOURCE_EXHAUSTED. Raise it for a host "
        "that legitimately opens more, e.g. a head node tunnelling many viewers.",
    )
    stream_write_timeout_seconds: Seconds = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="A stream whose client reads nothing for this long is ended "
        "RESOURCE_EXHAUSTED, freeing its slot; raise it for clients that pause reading longer.",
    )
    every_frame_queue_frames: int = Field(
        default=4096,
        ge=1,
        le=1_000_000,
        description="Frames an every-frame stream may have waiting for its client; beyond it "
        "the oldest are dropped and the client told how many (frames_lost). Frames are shared "
        "by every stream, so this bounds memory at about 7 KB per frame held.",
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: list[str]) -> list[str]:
        return _listen_addresses(value, "listen")

    @model_validator(mode="after")
    def _intervals(self) -> DaqDataConfig:
        if self.max_client_update_interval_seconds < self.min_hp_io_update_interval_seconds:
            raise FieldProblem(
                ["max_client_update_interval_seconds", "min_hp_io_update_interval_seconds"],
                f"max_client_update_interval_seconds ({self.max_client_update_interval_seconds}) "
                "is below min_hp_io_update_interval_seconds "
                f"({self.min_hp_io_update_interval_seconds}); raise it",
            )
        largest = self.max_upload_header_bytes + IMAGE_BODY_BYTES
        if self.max_send_message_bytes < largest:
            raise FieldProblem(
                ["max_send_message_bytes", "max_upload_header_bytes"],
                f"max_send_message_bytes ({self.max_send_message_bytes}) is below the largest "
                f"streamed image (max_upload_header_bytes + {IMAGE_BODY_BYTES} = {largest}); "
                "raise it or lower max_upload_header_bytes",
            )
        return self

    def data_roots(self, hp_io: HpIoConfig) -> list[Path]:
        """Where a real-mode data_dir may lie: allowed_data_roots, else hp_io.data_dir alone
        (nothing when that is relative, which only a simulating configuration may have)."""
        if self.allowed_data_roots:
            return list(self.allowed_data_roots)
        return [hp_io.data_dir] if hp_io.data_dir.is_absolute() else []

    def unix_listen_address(self) -> str | None:
        """The first `unix:` listen address (the rpc simulator's default target), if any."""
        return next((a for a in self.listen if a.startswith("unix:")), None)

    def simulation_problem(self) -> FieldProblem | None:
        """Why the simulator cannot run with these settings (None if it can).

        Its mode needs its acquisition path: `uds` the Hashpipe sockets (one for each simulated
        product), the filesystem modes their source, `rpc` a unix:// listener or rpc_target;
        the filesystem sources read sim_data_dir while simulating, so it must be absolute then.
        Paths in the problem are relative to this section. Checked at load when
        hp_io.simulate_daq is set, and by InitHpIo with simulate_daq.
        """
        sim = self.simulator
        enabled = {
            "uds": ("hashpipe", self.hashpipe.enabled),
            "filesystem_poll": ("filesystem_poll", self.filesystem_poll.enabled),
            "filesystem_pipe": ("filesystem_pipe", self.filesystem_pipe.enabled),
        }
        if sim.mode in enabled and not enabled[sim.mode][1]:
            source = enabled[sim.mode][0]
            return FieldProblem(
                [f"{source}.enabled", "simulator.mode"],
                f"simulator mode {sim.mode} needs daqdata.{source}.enabled: true; enable it or "
                "choose another daqdata.simulator.mode",
            )
        if sim.mode == "uds":
            missing = [p for p in sim.uds_data_products if p not in self.hashpipe.data_products]
            if missing:
                return FieldProblem(
                    ["simulator.uds_data_products", "hashpipe.data_products"],
                    f"the uds simulator feeds {', '.join(missing)} but daqdata.hashpipe."
                    "data_products has no socket for it; add it there or remove it here",
                )
        if sim.mode == "rpc" and sim.rpc_target is None and self.unix_listen_address() is None:
            return FieldProblem(
                ["simulator.mode", "listen"],
                "simulator mode rpc needs a unix:// address in daqdata.listen (or "
                "daqdata.simulator.rpc_target); add one such as 'unix:///run/panoseti/daqdata.sock'",
            )
        if self.filesystem_poll.enabled or self.filesystem_pipe.enabled:
            try:
                check_absolute(sim.sim_data_dir, "sim_data_dir", "/tmp/panoseti-sim")
            except ValueError as exc:
                return FieldProblem(["simulator.sim_data_dir"], str(exc))
        return None


class HpIoConfig(_Section):
    """The default InitHpIo payload, applied at start when daqdata.init_from_default is true."""

    data_dir: Path = Field(
        default=Path("/mnt/panoseti"),
        description="Run-data directory the filesystem sources watch: an absolute path (only "
        "used when a filesystem source is enabled; ignored, so any path, with simulate_daq).",
    )
    update_interval_seconds: Seconds = Field(
        default=0.1,
        gt=0,
        le=3600,
        description="hp_io interval: how often sources sample and the fastest stream rate; at "
        "least daqdata.min_hp_io_update_interval_seconds.",
    )
    simulate_daq: bool = Field(
        default=False, description="Feed hp_io from the simulator (daqdata.simulator)."
    )
    force: bool = Field(default=False, description="End running streams when re-initialising.")
    module_ids: list[ModuleId] = Field(
        default_factory=list, description="Only ingest these modules; empty means all."
    )

    @field_validator("module_ids")
    @classmethod
    def _modules(cls, value: list[int]) -> list[int]:
        return check_module_ids(value, "module_ids")

    @model_validator(mode="after")
    def _absolute(self) -> HpIoConfig:
        if not self.simulate_daq:
            try:
                check_absolute(self.data_dir, "data_dir")
            except ValueError as exc:
                raise FieldProblem(["data_dir"], f"{exc} (or set simulate_daq: true)") from None
        return self


def _range(name: str) -> JsonDict:
    """A coordinate's range for the JSON Schema (and so the docs); `ublox.rules` enforces it."""
    lo, hi = rules.COORDINATE_RANGES[name]
    return {
        "minimum": int(lo) if lo.is_integer() else lo,
        "maximum": int(hi) if hi.is_integer() else hi,
    }


class PositionConfig(_Section):
    """Fixed antenna position for the receiver's time mode (docs/ublox.md, "Fixed position")."""

    format: Annotated[Literal["LLH", "ECEF"], BeforeValidator(rules.position_format)] = Field(
        default="LLH", description="`LLH` (lat_deg, lon_deg, height_m) or `ECEF` (x_m, y_m, z_m)."
    )
    lat_deg: float | None = Field(
        default=None, json_schema_extra=_range("lat_deg"), description="Latitude (LLH), degrees."
    )
    lon_deg: float | None = Field(
        default=None, json_schema_extra=_range("lon_deg"), description="Longitude (LLH), degrees."
    )
    height_m: float | None = Field(
        default=None,
        json_schema_extra=_range("height_m"),
        description="Height above the ellipsoid (LLH), metres.",
    )
    x_m: float | None = Field(
        default=None, json_schema_extra=_range("x_m"), description="ECEF X, metres."
    )
    y_m: float | None = Field(
        default=None, json_schema_extra=_range("y_m"), description="ECEF Y, metres."
    )
    z_m: float | None = Field(
        default=None, json_schema_extra=_range("z_m"), description="ECEF Z, metres."
    )
    acc_m: float = Field(
        default=rules.DEFAULT_ACC_M,
        json_schema_extra={"exclusiveMinimum": 0, "maximum": int(rules.MAX_ACC_M)},
        description="Position accuracy given to the receiver, metres.",
    )

    @field_validator("lat_deg", "lon_deg", "height_m", "x_m", "y_m", "z_m", mode="before")
    @classmethod
    def _coordinate(cls, value: object, info: ValidationInfo) -> object:
        return None if value is None else rules.coordinate(str(info.field_name), value)

    @field_validator("acc_m", mode="before")
    @classmethod
    def _accuracy(cls, value: object) -> float:
        return rules.accuracy(value)

    @model_validator(mode="after")
    def _complete(self) -> PositionConfig:
        given = {name for name in rules.COORDINATE_RANGES if getattr(self, name) is not None}
        wrong = rules.position_fields(self.format, given)
        if wrong:
            raise every_problem(
                "PositionConfig",
                # A missing field has no line of its own; a foreign one does.
                (FieldProblem([n, "format"] if n in given else [n], p) for n, p in wrong.items()),
            )
        return self


class CfgKeySetting(_Section):
    """One receiver configuration item, written with CFG-VALSET and verified with CFG-VALGET."""

    key: str = Field(
        description="Configuration key: a name of the receiver's configuration database (as "
        "pyubx2 knows it) such as `CFG_TP_FREQ_TP1` (`-` or `_`, any case), or its id "
        "`0x40050024`; stored as the name."
    )
    value: bool | int | float | str = Field(
        description='Value of the key\'s type and range (docs/ublox.md, "Values"); give large '
        "U8/I8/X8 values and hex (`0x…`) as strings."
    )

    @field_validator("key", mode="before")
    @classmethod
    def _key(cls, value: object) -> str:
        return normalise_key(value).name

    @field_validator("value", mode="before")
    @classmethod
    def _value(cls, value: object, info: ValidationInfo) -> object:
        if "key" in info.data:  # else the key's own problem is reported
            coerce_value(normalise_key(info.data["key"]), value)
        return value


def _setting_problems(ublox: UbloxConfig, index: int | None) -> list[FieldProblem]:
    """The rules between F9T settings (`ublox.rules`), for the general ones or one chip's.

    A chip is judged on the lists it gives and on what its settings make of the general ones
    (its verify_layer against the general layers, its position against the general keys), so a
    problem of the general settings is reported once, not once per chip. Paths are relative to
    `ublox`, the chip's own settings first.
    """
    chip = None if index is None else ublox.chips[index]
    owner = "" if index is None else f"chips.{index}."

    def given(name: str) -> bool:
        return chip is None or getattr(chip, name) is not None

    def value(name: str) -> Any:
        return getattr(chip if chip is not None and given(name) else ublox, name)

    def where(*paths: str) -> list[str]:
        """Where each setting the merged config takes is written, the chip's own first."""
        written = [f"{owner}{p}" if given(p.split(".")[0]) else p for p in paths]
        return sorted(written, key=lambda p: not p.startswith("chips."))

    out: list[FieldProblem] = []
    layers: list[str] = value("apply_to_layers")
    keys = [s.key for s in value("cfg_key_settings")]
    repeated_keys = rules.repeated(keys)
    if given("apply_to_layers"):
        repeats = rules.repeated(layers).items()
        out += [FieldProblem(where(f"apply_to_layers.{i}"), p) for i, p in repeats]
    if given("cfg_key_settings"):
        out += [
            FieldProblem(where(f"cfg_key_settings.{i}.key"), p) for i, p in repeated_keys.items()
        ]
    if given("apply_to_layers") or given("verify_layer"):
        try:
            rules.verify_layer(value("verify_layer"), layers)
        except ValueError as exc:
            out.append(FieldProblem(where("verify_layer", "apply_to_layers"), str(exc)))
    if (given("cfg_key_settings") or given("position")) and value("position") is not None:
        conflicts = rules.tmode_conflicts(keys).items()
        out += [
            FieldProblem(where(f"cfg_key_settings.{i}.key", "position"), p)
            for i, p in conflicts
            if i not in repeated_keys
        ]
    return out


class ChipConfig(_Section):
    """One receiver; its keys override the general ublox settings (the f9t_config merge rule)."""

    uid: ReceiverUid = Field(
        description="SEC-UNIQID of the receiver as 10 hex digits, e.g. `DF03A241BC`; InitF9t "
        "fails when the attached receiver reports another."
    )
    device: DevicePath | None = Field(
        default=None, description="Serial device of this chip; null uses ublox.device."
    )
    baud: Baud | None = Field(default=None, description="Baud of this chip; null uses ublox.baud.")
    apply_to_layers: Layers | None = Field(
        default=None, description="Layers for this chip; null uses ublox.apply_to_layers."
    )
    verify_layer: UpperLayer | None = Field(
        default=None, description="Verify layer for this chip; null uses ublox.verify_layer."
    )
    position: PositionConfig | None = Field(
        default=None, description="Antenna position of this chip; null uses ublox.position."
    )
    cfg_key_settings: list[CfgKeySetting] | None = Field(
        default=None, description="Replaces ublox.cfg_key_settings for this chip when given."
    )


class UbloxConfig(_DaemonSection):
    """The UbloxControl daemon and the ZED-F9T settings it applies (docs/ublox.md)."""

    listen: list[str] = Field(
        default_factory=lambda: ["127.0.0.1:50052", "unix:///run/panoseti/ublox.sock"],
        min_length=1,
        description="gRPC listen addresses (`HOST:PORT`, `unix:///PATH` or `systemd:NAME`, as "
        "for daqdata.listen); not DaqData's port.",
    )
    device: DevicePath = Field(
        default="/dev/ublox-f9t",
        description="Serial device of the receiver (the udev symlink); chips may override it.",
    )
    baud: Baud = Field(
        default=115200,
        description=f"Serial baud rate, one of {', '.join(map(str, rules.STANDARD_BAUDS))} "
        "(irrelevant over USB, but must be valid).",
    )
    apply_to_layers: Layers = Field(
        default_factory=_ram_only,
        description="Configuration layers written: RAM, BBR and/or FLASH.",
    )
    verify_layer: UpperLayer = Field(
        default="RAM", description="Layer read back to verify; must be one of apply_to_layers."
    )
    cfg_key_settings: list[CfgKeySetting] = Field(
        default_factory=list, description="Configuration items written to every chip."
    )
    position: PositionConfig | None = Field(
        default=None, description="Fixed antenna position (time mode); null leaves TMODE alone."
    )
    chips: list[ChipConfig] = Field(
        default_factory=list, description="Known receivers, each with its uid and overrides."
    )
    chip_uid: ReceiverUid | None = Field(
        default=None,
        description="uid of the chip (from `chips`) to initialise at start; null means the "
        "first chip, if any.",
    )
    init_on_start: bool = Field(
        default=False, description="Run InitF9t for the selected chip when the daemon starts."
    )
    max_read_queue_size: int = Field(
        default=200,
        ge=1,
        le=1_000_000,
        description="Frames a CaptureUblox subscriber may fall behind before the oldest drop.",
    )
    shutdown_grace_period: Seconds = Field(
        default=0.5, ge=0, le=300, description="Seconds in-flight RPCs get to finish on shutdown."
    )
    ack_timeout_seconds: Seconds = Field(
        default=2.5, gt=0, le=60, description="Wait for each CFG-VALSET/VALGET acknowledgement."
    )
    poll_timeout_seconds: Seconds = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Wait for the answer to each PollMessage message poll.",
    )
    max_patterns: int = Field(
        default=64,
        ge=1,
        le=1024,
        description="Patterns one CaptureUblox or PollMessage request may give; more are "
        "INVALID_ARGUMENT.",
    )
    max_pattern_chars: int = Field(
        default=256,
        ge=1,
        le=4096,
        description="Characters one CaptureUblox or PollMessage pattern may have; a longer one is "
        "INVALID_ARGUMENT.",
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: list[str]) -> list[str]:
        return _listen_addresses(value, "listen")

    @model_validator(mode="after")
    def _consistent(self) -> UbloxConfig:
        problems = _setting_problems(self, None)
        uids = [c.uid for c in self.chips]
        problems += [FieldProblem([f"chips.{i}.uid"], p) for i, p in rules.repeated(uids).items()]
        for index in range(len(self.chips)):
            problems += _setting_problems(self, index)
        if self.chip_uid is not None:
            try:
                rules.chip_index(uids, self.chip_uid)
            except ValueError as exc:
                problems.append(
                    FieldProblem(["chip_uid", "chips"], f"{exc}; add that chip or correct chip_uid")
                )
        if self.init_on_start and not self.chips:
            problems.append(
                FieldProblem(
                    ["init_on_start", "chips"],
                    "init_on_start needs a chip to initialise; add one to chips (uid and device) "
                    "or set init_on_start: false",
                )
            )
        if problems:
            raise every_problem("UbloxConfig", problems)
        return self

    def chip(self, uid: str) -> ChipConfig:
        """The chip with `uid` (any case); ValueError naming the known ones if there is none."""
        return self.chips[rules.chip_index([c.uid for c in self.chips], uid)]

    def selected_chip(self) -> ChipConfig | None:
        """The chip initialised at start: `chip_uid`'s entry, else the first, else none."""
        if self.chip_uid is not None:
            return self.chip(self.chip_uid)
        return self.chips[0] if self.chips else None

    def f9t_config(self, chip: ChipConfig) -> dict[str, Any]:
        """The flat InitF9t `f9t_config` for one chip: general settings, chip keys winning."""
        general = self.model_dump(include=set(rules.F9T_SETTINGS), exclude_none=True)
        own = chip.model_dump(exclude={"uid"}, exclude_none=True)
        return rules.merge_chip(general, {"f9t_uid": chip.uid, **own})


class PortForwardingConfig(_Section):
    """network_config port forwarding of one DAQ node (docs/clients.md, "Which servers")."""

    status: bool = Field(
        default=False, description="Reach the node through gw_ip instead of ip_addr."
    )
    gw_ip: str | None = Field(
        default=None, min_length=1, description="Gateway address used when status."
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, description="SSH port of the gateway (not used for gRPC)."
    )

    @model_validator(mode="after")
    def _gateway(self) -> PortForwardingConfig:
        if self.status and not self.gw_ip:
            raise FieldProblem(["gw_ip"], "status is true but gw_ip is missing; add gw_ip")
        return self

    def gateway(self) -> str | None:
        """Where clients reach the node instead of its ip_addr (None: directly)."""
        return self.gw_ip if self.status else None


class DaqNodeConfig(_Section):
    """One DAQ node of the observatory (daq_config.json `daq_nodes` entry)."""

    ip_addr: str = Field(
        min_length=1,
        description="Where clients reach the node's DaqData server: host name or IP (port 50051), "
        "`host:port`, or `unix:///path`; also the key of `port_forwarding`.",
    )
    data_dir: NodeDir | None = Field(
        default=None,
        description="Run-data directory on the node (absolute); InitHpIo gets it when the hp_io "
        "config gives none.",
    )
    module_ids: str = Field(
        default="",
        description="Modules the node serves as ranges, e.g. `0-127` or `1,3,8-11`.",
    )
    username: str | None = Field(default=None, description="Login user on the node.")
    bindhost: str | None = Field(default=None, description="Address Hashpipe binds on the node.")

    @field_validator("ip_addr", mode="before")
    @classmethod
    def _address(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip()
            if not value:
                raise ValueError(
                    "ip_addr is empty; write the node's host name or IP, host:port, or unix:///path"
                )
        return value

    @field_validator("module_ids", mode="before")
    @classmethod
    def _ranges(cls, value: object) -> object:
        if isinstance(value, list) and all(isinstance(v, int) for v in value):
            return format_module_range(check_module_ids(value, "module_ids"))
        if isinstance(value, str):
            parse_module_range(value)
        return value

    def module_id_list(self) -> list[int]:
        return parse_module_range(self.module_ids)


class ObservatoryConfig(_Section):
    """Where the DAQ nodes are, for clients (daq_config.json plus network_config.json).

    `panoseti daq` uses these nodes when it is given neither `--host` nor `--daq-config`.
    """

    head_node_ip_addr: str | None = Field(default=None, description="Address of the head node.")
    head_node_data_dir: NodeDir | None = Field(
        default=None, description="Run-data directory on the head node (absolute)."
    )
    daq_nodes: list[DaqNodeConfig] = Field(default_factory=list, description="The DAQ nodes.")
    port_forwarding: dict[str, PortForwardingConfig] = Field(
        default_factory=dict,
        description="Port forwarding per DAQ node ip_addr (from network_config.json).",
    )


class LoggingConfig(_Section):
    """Log verbosity and destination of both daemons."""

    level: Annotated[
        Literal["debug", "info", "warning", "error", "critical"], BeforeValidator(_lower)
    ] = Field(default="info", description="Lowest level logged.")
    # "auto": journald when run by systemd (JOURNAL_STREAM set), else plain text on stderr.
    target: Annotated[Literal["auto", "stderr", "journald"], BeforeValidator(_lower)] = Field(
        default="auto",
        description="`auto` logs to journald under systemd and to stderr otherwise.",
    )


#: Who may call a daemon's write RPCs (docs/security.md, "Write access").
WriteAccess = Literal["any", "local", "authenticated"]


def _pem_file(path: Path | None, info: ValidationInfo) -> Path | None:
    if path is None:
        return None
    return readable_file(path, info.field_name or "file")


PemFile = Annotated[Path | None, AfterValidator(_pem_file)]


class TlsConfig(_Section):
    """TLS on both daemons' TCP listen addresses (unix sockets stay plaintext: their file mode
    decides who connects). Off while cert_file is unset (docs/security.md)."""

    cert_file: PemFile = Field(
        default=None,
        description="PEM certificate chain the daemons present on TCP (absolute path); "
        "setting it (with key_file) turns TLS on for every TCP listen address.",
    )
    key_file: PemFile = Field(
        default=None,
        description="PEM private key of cert_file (absolute path, unencrypted, readable by the "
        "daemons' user only).",
    )
    client_ca_file: PemFile = Field(
        default=None,
        description="PEM CA certificate(s) that issue client certificates (mutual TLS); needs "
        "require_client_cert: true.",
    )
    require_client_cert: bool = Field(
        default=False,
        description="Mutual TLS: refuse TCP clients without a certificate issued by "
        "client_ca_file (such clients count as `authenticated` for write access).",
    )

    @model_validator(mode="after")
    def _complete(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            missing = "key_file" if self.key_file is None else "cert_file"
            raise FieldProblem(
                [missing],
                f"{missing} is missing: TLS needs both cert_file and key_file (or neither)",
            )
        if self.cert_file is None and (self.client_ca_file or self.require_client_cert):
            raise FieldProblem(
                ["cert_file"],
                "client certificates need TLS: set cert_file and key_file, or remove "
                "client_ca_file and require_client_cert",
            )
        if self.require_client_cert and self.client_ca_file is None:
            raise FieldProblem(
                ["client_ca_file"],
                "require_client_cert is true but client_ca_file is missing; give the PEM "
                "file of the CA that issues the client certificates",
            )
        if self.client_ca_file is not None and not self.require_client_cert:
            raise FieldProblem(
                ["require_client_cert"],
                "client_ca_file is set but require_client_cert is false, and gRPC checks "
                "client certificates only when it requires them; set require_client_cert: "
                "true or remove client_ca_file",
            )
        try:
            if self.cert_file is not None and self.key_file is not None:
                check_cert_and_key(self.cert_file, self.key_file)
        except ValueError as exc:
            raise FieldProblem(["cert_file", "key_file"], str(exc)) from None
        try:
            if self.client_ca_file is not None:
                check_ca(self.client_ca_file)
        except ValueError as exc:
            raise FieldProblem(["client_ca_file"], str(exc)) from None
        return self

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None


class AccessConfig(_Section):
    """Who may reach the daemons and call their write RPCs (docs/security.md)."""

    tls: TlsConfig = Field(
        default_factory=TlsConfig, description="TLS and mutual TLS on TCP listen addresses."
    )
    daqdata_write: WriteAccess = Field(
        default="local",
        description="Who may call InitHpIo and UploadImages: `any` client, `local` ones (the "
        "unix socket or loopback TCP), or `authenticated` ones (the unix socket or a TCP client "
        "with a verified certificate, tls.require_client_cert). Others get PERMISSION_DENIED.",
    )
    ublox_write: WriteAccess = Field(
        default="local",
        description="Who may call InitF9t (as for daqdata_write).",
    )


class ApplianceConfig(BaseSettings):
    """The whole configuration of one DAQ node."""

    model_config = SettingsConfigDict(extra="forbid", validate_assignment=True)

    daqdata: DaqDataConfig = Field(
        default_factory=DaqDataConfig, description="The DaqData image daemon."
    )
    hp_io: HpIoConfig = Field(
        default_factory=HpIoConfig, description="The ingestion started at boot (InitHpIo defaults)."
    )
    ublox: UbloxConfig = Field(
        default_factory=UbloxConfig, description="The UbloxControl timing-receiver daemon."
    )
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Logging.")
    observatory: ObservatoryConfig = Field(
        default_factory=ObservatoryConfig,
        description="The observatory's DAQ nodes, for clients (imported daq_config/network_config).",
    )
    access: AccessConfig = Field(
        default_factory=AccessConfig,
        description="Access control: TLS on TCP and who may call the write RPCs.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments only: the environment is read only when a load is given it."""
        return (init_settings,)

    @classmethod
    def from_sources(cls, sources: Sequence[PydanticBaseSettingsSource]) -> ApplianceConfig:
        """Validate what `sources` give (lowest priority first), merged by pydantic-settings.

        The sources reach `settings_customise_sources` through a subclass made for this call
        only, so two loads in one process, in any threads, never see each other's sources.
        """
        highest_first = tuple(reversed(sources))

        def customise(
            owner: type[BaseSettings],
            /,
            settings_cls: type[BaseSettings],
            **builtin: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return highest_first

        sourced = type(cls.__name__, (cls,), {"settings_customise_sources": classmethod(customise)})
        built: ApplianceConfig = sourced()
        fields = {name: getattr(built, name) for name in cls.model_fields}
        return cls.model_construct(_fields_set=built.model_fields_set, **fields)

    @model_validator(mode="after")
    def _cross_section(self) -> ApplianceConfig:
        minimum = self.daqdata.min_hp_io_update_interval_seconds
        if self.hp_io.update_interval_seconds < minimum:
            raise FieldProblem(
                ["hp_io.update_interval_seconds", "daqdata.min_hp_io_update_interval_seconds"],
                f"hp_io.update_interval_seconds ({self.hp_io.update_interval_seconds}) is below "
                f"daqdata.min_hp_io_update_interval_seconds ({minimum}); raise it to at least "
                f"{minimum}",
            )
        if not self.hp_io.simulate_daq:
            try:
                check_within_roots(self.hp_io.data_dir, self.daqdata.data_roots(self.hp_io))
            except ValueError as exc:
                raise FieldProblem(
                    ["hp_io.data_dir", "daqdata.allowed_data_roots"],
                    f"{exc}; add a root to daqdata.allowed_data_roots or choose another data_dir",
                ) from None
        problem = self.daqdata.simulation_problem() if self.hp_io.simulate_daq else None
        if problem is not None:
            raise FieldProblem(
                [*(f"daqdata.{p}" for p in problem.paths), "hp_io.simulate_daq"],
                f"{problem} (or set hp_io.simulate_daq: false)",
            )
        return self
