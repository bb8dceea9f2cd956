"""`panoseti daq`: talk to DaqData servers.

    panoseti daq --host localhost ping
    panoseti daq --daq-config daq_config.json --net-config network_config.json hosts
    panoseti daq --host node1 stream --json
    panoseti daq --host node1 view --png preview.png --duration 10

Servers come from, first match wins:
  1. `--host` (repeatable; `host`, `host:port` or `unix:///path`),
  2. `--daq-config`/`--net-config` (or `DAQ_CFG`/`NET_CFG`),
  3. `observatory.daq_nodes` (and `observatory.port_forwarding`) of the appliance configuration
     (`--config FILE`, else $PANOSETI_CONFIG, else /etc/panoseti/panoseti.yaml; drop-ins,
     PANOSETI_* variables and `--set` apply).
`panoseti daq hosts` says which one was used. SIGINT/SIGTERM end a stream cleanly.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

from rich.console import Console

from panoseti_appliance.cli.tls import add_tls_arguments, client_tls
from panoseti_appliance.config.importers import read_hp_io_config
from panoseti_appliance.config.loader import (
    OVERRIDE_ORIGIN,
    ConfigError,
    add_config_argument,
    load_config_details,
    overrides_from_args,
    render_problems,
)
from panoseti_appliance.config.models import HpIoConfig, ObservatoryConfig
from panoseti_appliance.products import UnknownDataProduct, by_layout

if TYPE_CHECKING:
    # Imported where used: grpc, pandas and the client would slow every `panoseti` command.
    from panoseti_appliance.cli.window import LivePlot
    from panoseti_appliance.daqdata.client import DaqDataClient

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
#: Stream interval meaning "as fast as the server's hp_io allows" (docs/daqdata.md, "StreamImages").
FASTEST = -1.0
INIT_TIMEOUT_SECONDS = 15.0
#: Frames per response of `--every-frame` streams: one message per frame is what limits a busy
#: node's rate (docs/daqdata.md, "Every frame").
EVERY_FRAME_BATCH = 16
P = TypeVar("P", bound="LivePlot")

_console = Console(stderr=True, soft_wrap=True)
log = logging.getLogger(__name__)


class CliError(Exception):
    """A user-facing failure: printed without a traceback, exits with `code`."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def _add_common(parser: argparse.ArgumentParser, nested: bool) -> None:
    """The options of every subcommand; accepted before or after the subcommand name."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if nested else value

    parser.add_argument(
        "--daq-config",
        metavar="PATH",
        default=default(None),
        help="daq_config.json listing the DAQ nodes (default: $DAQ_CFG)",
    )
    parser.add_argument(
        "--net-config",
        metavar="PATH",
        default=default(None),
        help="network_config.json with gateway port forwarding (default: $NET_CFG)",
    )
    parser.add_argument(
        "--host",
        action="append",
        metavar="TARGET",
        default=default(None),
        help="server to use: host, host:port or unix:///path (repeatable; default: all nodes "
        "of the daq config, else observatory.daq_nodes of the configuration)",
    )
    parser.add_argument(
        "--module-ids",
        nargs="+",
        type=int,
        metavar="N",
        default=default([]),
        help="only these module ids (default: all)",
    )
    parser.add_argument(
        "--refresh-period",
        type=float,
        metavar="S",
        default=default(1.0),
        help="stream interval and redraw period in seconds (default: 1.0)",
    )
    add_tls_arguments(parser, suppress=nested)
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, default=argparse.SUPPRESS, help="logging verbosity"
    )
    add_config_argument(parser, nested=nested)


def _add_output(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--png", metavar="OUT", help=f"render the {what} headless to this PNG file at the end"
    )
    parser.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="stop S seconds after connecting (default: until Ctrl-C)",
    )


def _add_stream_options(parser: argparse.ArgumentParser) -> None:
    """How a streaming subcommand asks for its images (docs/clients.md, "Pixel encodings and
    every frame")."""
    parser.add_argument(
        "--every-frame",
        action="store_true",
        help="every frame in order instead of the newest per --refresh-period (frames the "
        "server had to drop are reported as frames_lost)",
    )
    parser.add_argument(
        "--frames-per-response",
        type=int,
        metavar="N",
        help=f"with --every-frame: up to N frames per response (default: {EVERY_FRAME_BATCH})",
    )
    parser.add_argument(
        "--encoding",
        choices=("auto", "packed", "raw"),
        default="auto",
        help="how pixels travel: raw bytes or one varint each (default auto: raw for a server "
        "on this machine, packed otherwise)",
    )
    parser.add_argument(
        "--compression",
        choices=("lz4", "zstd"),
        help="compress the raw pixel bytes (blosc2), for slow links",
    )


def register(daq: argparse.ArgumentParser) -> None:
    """Fill the `panoseti daq` parser."""
    _add_common(daq, nested=False)
    commands = daq.add_subparsers(dest="daq_command", metavar="SUBCOMMAND", required=True)

    def add(name: str, help_text: str, handler: Callable[[argparse.Namespace], int]) -> Any:
        parser = commands.add_parser(name, help=help_text, description=help_text)
        _add_common(parser, nested=True)
        parser.set_defaults(func=_guarded(handler))
        return parser

    add("ping", "ping each server; exit 1 if any does not answer", _cmd_ping)
    add("hosts", "print {target: valid} for every configured server", _cmd_hosts)
    add("reflect", "list each server's gRPC services and DaqData methods", _cmd_reflect)
    init = add("init", "InitHpIo with an hp_io JSON file (timeout 15 s)", _cmd_init)
    init.add_argument("cfg", metavar="CFG", help="hp_io config JSON file")
    init_sim = add("init-sim", "InitHpIo with the packaged simulate config", _cmd_init_sim)
    init_sim.add_argument("--cfg", metavar="CFG", help="simulate hp_io JSON file instead")
    stream = add("stream", "print one line per image (or JSON lines)", _cmd_stream)
    stream.add_argument("--json", action="store_true", help="one JSON object per image")
    stream.add_argument("--no-movie", action="store_true", help="skip movie images")
    stream.add_argument("--no-ph", action="store_true", help="skip pulse-height images")
    stream.add_argument("--count", type=int, metavar="N", help="stop after N images")
    stream.add_argument(
        "--duration", type=float, metavar="S", help="stop S seconds after connecting"
    )
    _add_stream_options(stream)
    view = add("view", "live image previewer (one row per module)", _cmd_view)
    _add_output(view, "previewer")
    _add_stream_options(view)
    phdist = add("phdist", "pulse-height distribution of each module", _cmd_phdist)
    phdist.add_argument(
        "--durations",
        nargs="+",
        type=float,
        default=[10.0, 60.0, 600.0],
        metavar="S",
        help="tumbling window lengths in seconds (default: 10 60 600)",
    )
    _add_output(phdist, "distribution")
    _add_stream_options(phdist)
    speed = add("speed", "print images/s received, about once a second", _cmd_speed)
    speed.add_argument(
        "--duration", type=float, metavar="S", help="stop S seconds after connecting"
    )
    _add_stream_options(speed)


def _settle_stream_options(args: argparse.Namespace) -> None:
    """Fill in --frames-per-response and refuse the combinations of _add_stream_options' flags
    that cannot work, before anything starts."""
    if "every_frame" not in args:
        return
    if args.frames_per_response is None:
        args.frames_per_response = EVERY_FRAME_BATCH if args.every_frame else 1
    if args.frames_per_response < 1:
        raise CliError(f"--frames-per-response must be at least 1, got {args.frames_per_response}")
    if args.frames_per_response > 1 and not args.every_frame:
        raise CliError("--frames-per-response needs --every-frame")
    if args.compression and args.encoding == "packed":
        raise CliError("--compression compresses the raw pixel bytes: drop --encoding packed")


def _guarded(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn expected failures into one clear line on stderr and a non-zero exit."""

    def run(args: argparse.Namespace) -> int:
        import grpc

        try:
            _settle_stream_options(args)
            return handler(args)
        except CliError as exc:
            _console.print(f"[red]error:[/] {exc}", highlight=False)
            return exc.code
        except grpc.RpcError as exc:
            _console.print(f"[red]error:[/] {exc.code().name}: {exc.details()}", highlight=False)
            return 1
        except ConnectionError as exc:
            _console.print(f"[red]error:[/] {exc}", highlight=False)
            return 1

    return run


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set `stop` (so streams end cleanly) while the block runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def _stop_after(stop: threading.Event, seconds: float | None) -> Iterator[None]:
    timer = threading.Timer(seconds, stop.set) if seconds is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()


@dataclass(frozen=True)
class ServerChoice:
    """The DaqData servers a command talks to, as client arguments, and where they came from."""

    daq_config: str | ObservatoryConfig | None
    net_config: str | None
    hosts: list[str] | None
    source: str


def _named_path(flag: str, env: str, value: str | None) -> tuple[str | None, str]:
    """A config path from its flag or environment variable, and how to name it in messages."""
    if value:
        return value, f"{flag} {value}"
    from_env = os.environ.get(env) or None
    return from_env, f"{env}={from_env}"


def choose_servers(args: argparse.Namespace) -> ServerChoice:
    """`--host`, else `--daq-config`/DAQ_CFG, else the configuration's `observatory.daq_nodes`."""
    daq_config, daq_name = _named_path("--daq-config", "DAQ_CFG", args.daq_config)
    net_config, net_name = _named_path("--net-config", "NET_CFG", args.net_config)
    forwarding = f", port forwarding from {net_name}" if net_config else ""
    if args.host:
        known = f" (data dirs from {daq_name}{forwarding})" if daq_config else ""
        return ServerChoice(daq_config, net_config, list(args.host), f"--host{known}")
    if daq_config:
        return ServerChoice(daq_config, net_config, None, f"{daq_name}{forwarding}")
    if args.net_config:
        raise CliError(
            "--net-config needs --daq-config: with the configuration file, port forwarding "
            "comes from observatory.port_forwarding"
        )
    return _servers_from_configuration(args)


def _servers_from_configuration(args: argparse.Namespace) -> ServerChoice:
    """The configuration's observatory section (its nodes and their port forwarding)."""
    try:
        loaded = load_config_details(args.config, overrides_from_args(args))
    except ConfigError as err:
        raise CliError(render_problems(err)) from err
    files = [
        layer.name for layer in loaded.layers if layer.name not in {"environment", OVERRIDE_ORIGIN}
    ]
    observatory = loaded.config.observatory
    if not observatory.daq_nodes:
        read = f"read {', '.join(files)}" if files else "no config file found"
        raise CliError(
            "no DaqData servers given: use --host HOST[:PORT] (repeatable), --daq-config "
            "daq_config.json (or set DAQ_CFG), or list the nodes under observatory.daq_nodes in "
            f"the config file (--config FILE; {read})"
        )
    source = f"observatory.daq_nodes ({loaded.source_of(('observatory', 'daq_nodes'))})"
    if observatory.port_forwarding:
        origin = loaded.source_of(("observatory", "port_forwarding"))
        source += f", port forwarding from observatory.port_forwarding ({origin})"
    return ServerChoice(observatory, None, None, source)


def _make_client(
    args: argparse.Namespace, stop: threading.Event | None = None
) -> tuple[DaqDataClient, ServerChoice]:
    choice = choose_servers(args)
    log.debug("DaqData servers from %s", choice.source)
    from panoseti_appliance.daqdata.client import DaqDataClient

    try:
        tls = client_tls(args)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    try:
        client = DaqDataClient(
            choice.daq_config, choice.net_config, hosts=choice.hosts, stop_event=stop, tls=tls
        )
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(f"bad server configuration ({choice.source}): {exc}") from exc
    return client, choice


@contextlib.contextmanager
def _connected(
    args: argparse.Namespace, stop: threading.Event | None = None
) -> Iterator[DaqDataClient]:
    """An entered client with at least one server answering Ping."""
    client, _ = _make_client(args, stop)
    with contextlib.ExitStack() as stack:
        with _console.status(f"pinging {len(client.daq_hosts)} DaqData server(s)…"):
            stack.enter_context(client)
        if not client.valid_daq_hosts:
            raise CliError(
                "no DaqData server answered Ping: tried "
                + ", ".join(sorted(client.daq_hosts))
                + " (is panoseti-daqdata running there, and is the address right?)",
                code=1,
            )
        yield client


def _cmd_ping(args: argparse.Namespace) -> int:
    client, _ = _make_client(args)
    with client:
        status = client.get_daq_host_status()
    for target, ok in status.items():
        print(f"{target}: {'ok' if ok else 'no answer'}")
    return 0 if all(status.values()) else 1


def _cmd_hosts(args: argparse.Namespace) -> int:
    client, choice = _make_client(args)
    print(f"servers from {choice.source}", file=sys.stderr, flush=True)
    with client:
        print(json.dumps(client.get_daq_host_status(), indent=2))
    return 0


def _cmd_reflect(args: argparse.Namespace) -> int:
    with _connected(args) as client:
        print(client.reflect_services(None))
    return 0


def _report_init(ok: bool, client: DaqDataClient) -> int:
    targets = ", ".join(sorted(client.valid_daq_hosts))
    if ok:
        print(f"InitHpIo succeeded on {targets}")
        return 0
    print(f"InitHpIo failed on at least one of {targets} (reasons logged above)", file=sys.stderr)
    return 1


def _read_hp_io_cfg(path: str) -> HpIoConfig:
    try:
        return read_hp_io_config(path)
    except ConfigError as err:
        raise CliError(render_problems(err)) from err


def _cmd_init(args: argparse.Namespace) -> int:
    cfg = _read_hp_io_cfg(args.cfg)
    return _run_init(
        args, lambda client: client.init_hp_io(None, cfg, timeout=INIT_TIMEOUT_SECONDS)
    )


def _cmd_init_sim(args: argparse.Namespace) -> int:
    cfg = _read_hp_io_cfg(args.cfg) if args.cfg else None
    return _run_init(args, lambda client: client.init_sim(None, cfg, timeout=INIT_TIMEOUT_SECONDS))


def _run_init(args: argparse.Namespace, init: Callable[[DaqDataClient], bool]) -> int:
    """Connect, run one InitHpIo call; a config the client refuses is named with its file."""
    with _connected(args) as client:
        try:
            ok = init(client)
        except ValueError as exc:
            raise CliError(f"{args.cfg}: {exc}") from exc
        return _report_init(ok, client)


def dp_name(parsed: dict[str, Any]) -> str:
    """The data product of a parsed image (`?` for a layout that is none of the four)."""
    try:
        return by_layout(
            1 if parsed["type"] == "PULSE_HEIGHT" else 2 if parsed["type"] == "MOVIE" else 0,
            parsed["shape"],
            parsed["bytes_per_pixel"],
        ).name
    except UnknownDataProduct:
        return "?"


def _iso(seconds: Decimal) -> str:
    whole = int(seconds)
    stamp = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{seconds - whole:.9f}"[1:]
    return f"{stamp}{fraction}Z"


def image_time(parsed: dict[str, Any]) -> str:
    """`wr <time>` when White Rabbit time is valid, else `host <time>`, else `no time`."""
    header = parsed["header"]
    wr = header.get("wr_unix_timestamp")
    if wr and not header.get("wr_clock_desync"):
        return f"wr {_iso(wr)}"
    pkt = header.get("pkt_unix_timestamp")
    return f"host {_iso(pkt)}" if pkt is not None else "no time"


def image_line(target: str, parsed: dict[str, Any]) -> str:
    """One human-readable line per image."""
    pixels = parsed["image_array"]
    lost = parsed.get("frames_lost", 0)
    return (
        f"{target} module={parsed['module_id']} {dp_name(parsed)} frame={parsed['frame_number']} "
        f"{image_time(parsed)} min={int(pixels.min())} max={int(pixels.max())}"
        + (f" frames_lost={lost}" if lost else "")
    )


def image_json(target: str, parsed: dict[str, Any]) -> str:
    """One JSON object per image (timestamps as exact decimal strings)."""
    header = parsed["header"]
    pixels = parsed["image_array"]

    def text(value: Any) -> str | None:
        return None if value is None else str(value)

    record = {
        "host": target,
        "module_id": parsed["module_id"],
        "dp": dp_name(parsed),
        "type": parsed["type"],
        "frame_number": parsed["frame_number"],
        "frames_lost": parsed.get("frames_lost", 0),
        "file": parsed["file"],
        "wr_unix_timestamp": text(header.get("wr_unix_timestamp")),
        "wr_clock_desync": header.get("wr_clock_desync"),
        "pkt_unix_timestamp": text(header.get("pkt_unix_timestamp")),
        "min": int(pixels.min()),
        "max": int(pixels.max()),
        "header": {
            k: v
            for k, v in header.items()
            if k
            not in {
                "wr_unix_timestamp",
                "wr_clock_desync",
                "pkt_unix_timestamp",
                "pandas_unix_timestamp",
            }
        },
    }
    return json.dumps(record)


def _stream(
    client: DaqDataClient,
    args: argparse.Namespace,
    stop: threading.Event,
    movie: bool,
    pulse_height: bool,
    interval: float,
) -> Iterator[tuple[str, Any]]:
    """The merged stream of the CLI: reconnecting, waiting for servers, stopped by `stop`."""
    return client.stream_images_by_host(
        None,
        movie,
        pulse_height,
        interval,
        args.module_ids,
        wait_for_ready=True,
        stop_event=stop,
        reconnect=True,
        every_frame=args.every_frame,
        max_frames_per_response=args.frames_per_response,
        encoding=args.encoding,
        compression=args.compression,
    )


def _cmd_stream(args: argparse.Namespace) -> int:
    if args.no_movie and args.no_ph:
        raise CliError("--no-movie and --no-ph together leave nothing to stream")
    stop = threading.Event()
    count = 0
    with stop_on_signals(stop), _connected(args, stop) as client, _stop_after(stop, args.duration):
        for target, parsed in _stream(
            client, args, stop, not args.no_movie, not args.no_ph, args.refresh_period
        ):
            print(
                image_json(target, parsed) if args.json else image_line(target, parsed), flush=True
            )
            count += 1
            if args.count is not None and count >= args.count:
                break
    return 0


class _Rate:
    """Counts images and reports `<n> pkts / <dt>s = <rate> (pkts/s)` about once a second.

    The clock starts at the first image, so connecting and the first tick do not dilute rates.
    """

    def __init__(self, period: float = 1.0) -> None:
        self.period = period
        self.total = 0
        self.started: float | None = None
        self._count = 0
        self._since = 0.0

    def add(self) -> str | None:
        now = time.monotonic()
        if self.started is None:
            self.started = self._since = now
        self.total += 1
        self._count += 1
        dt = now - self._since
        if dt < self.period:
            return None
        line = f"{self._count} pkts / {dt:.2f}s = {self._count / dt:.1f} (pkts/s)"
        self._count, self._since = 0, now
        return line

    def summary(self) -> str:
        started = time.monotonic() if self.started is None else self.started
        dt = max(time.monotonic() - started, 1e-9)
        return f"{self.total} images in {dt:.1f} s = {self.total / dt:.1f} images/s"


def _plot(make: Callable[[bool], P], png: str | None) -> P:
    """The plot off-screen with --png, else in a window (or one line saying why there is none)."""
    if png is not None:
        return make(False)
    from panoseti_appliance.cli.window import WindowUnavailable, open_window

    try:
        return open_window(lambda: make(True))
    except WindowUnavailable as exc:
        raise CliError(str(exc)) from None


def _plot_loop(
    args: argparse.Namespace,
    plot: Any,
    movie: bool,
    pulse_height: bool,
    interval: float,
    what: str,
) -> int:
    stop = threading.Event()
    rate = _Rate()
    with (
        stop_on_signals(stop),
        _connected(args, stop) as client,
        _stop_after(stop, args.duration),
        _console.status(f"{what}: waiting for images…") as status,
    ):
        images = _stream(client, args, stop, movie, pulse_height, interval)
        if not args.png:
            from panoseti_appliance.cli.window import feed_window

            images = feed_window(images, plot, stop)
        for _target, parsed in images:
            plot.update(parsed)
            if rate.add() is not None:
                status.update(f"{what}: {rate.total} images received")
    if args.png:
        out = plot.save_png(args.png)
        print(f"{what}: {rate.summary()}; wrote {out.absolute()}")
    else:
        print(f"{what}: {rate.summary()}; {'stopped' if plot.window_open else 'window closed'}")
    return 0


def _cmd_view(args: argparse.Namespace) -> int:
    from panoseti_appliance.daqdata.client.plot import PanoImagePreviewer

    def make(interactive: bool) -> PanoImagePreviewer:
        return PanoImagePreviewer(
            module_id_whitelist=args.module_ids,
            plot_update_interval=args.refresh_period,
            interactive=interactive,
        )

    previewer = _plot(make, args.png)
    return _plot_loop(args, previewer, True, True, args.refresh_period, "view")


def _cmd_phdist(args: argparse.Namespace) -> int:
    from panoseti_appliance.daqdata.client.plot import PulseHeightDistribution

    def make(interactive: bool) -> PulseHeightDistribution:
        return PulseHeightDistribution(
            args.durations,
            args.module_ids,
            plot_update_interval=args.refresh_period,
            interactive=interactive,
        )

    try:
        distribution = _plot(make, args.png)
    except ValueError as exc:
        raise CliError(f"--durations: {exc}") from exc
    return _plot_loop(args, distribution, False, True, FASTEST, "phdist")


def _cmd_speed(args: argparse.Namespace) -> int:
    stop = threading.Event()
    rate = _Rate()
    with stop_on_signals(stop), _connected(args, stop) as client, _stop_after(stop, args.duration):
        for _ in _stream(client, args, stop, True, True, FASTEST):
            line = rate.add()
            if line is not None:
                print(line, flush=True)
    lost = ", ".join(f"{t} {n}" for t, n in sorted(client.frames_lost.items()) if n)
    print(rate.summary() + (f"; frames lost: {lost}" if lost else ""), flush=True)
    return 0
