"""`panoseti ublox init|capture|poll`: talk to UbloxControl servers."""

from __future__ import annotations

import argparse
import sys
import threading

import grpc

from panoseti_appliance._proto import ublox_control_pb2 as pb
from panoseti_appliance.cli.actions import add_action
from panoseti_appliance.cli.tls import add_tls_arguments, client_tls
from panoseti_appliance.config import ConfigError, render_problems
from panoseti_appliance.ublox.client import UbloxControlClient, chip_config, load_f9t_config
from panoseti_appliance.ublox.client.display import format_line, json_line

DEFAULT_HOST = "localhost:50052"


def register(parser: argparse.ArgumentParser) -> None:
    """Fill the `panoseti ublox` parser."""
    sub = parser.add_subparsers(dest="ublox_command", metavar="ACTION")
    sub.required = True

    def add_host(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--host",
            action="append",
            help=f"UbloxControl address host:port or unix:///path; repeat for several "
            f"(default {DEFAULT_HOST})",
        )
        add_tls_arguments(p)

    init = add_action(sub, "init", "configure and verify a receiver (InitF9t)", _init)
    add_host(init)
    init.add_argument("--f9t-config", required=True, help="f9t_config JSON5 file")
    init.add_argument("--chip", required=True, help="f9t_uid of the chip in f9t_chips to use")
    init.add_argument(
        "--force", action="store_true", help="end running captures and re-initialise anyway"
    )
    init.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")

    capture = add_action(sub, "capture", "stream UBX messages (CaptureUblox)", _capture)
    add_host(capture)
    capture.add_argument(
        "patterns", nargs="*", help="regexes matched at the start of the identity (default: all)"
    )
    capture.add_argument("--json", action="store_true", help="print JSON lines")
    capture.add_argument("--duration", type=float, help="stop after this many seconds")

    poll = add_action(sub, "poll", "poll UBX messages and CFG keys (PollMessage)", _poll)
    add_host(poll)
    poll.add_argument("patterns", nargs="+", help="regexes: message identities and/or CFG_ keys")
    poll.add_argument("--json", action="store_true", help="print JSON lines")


def _hosts(args: argparse.Namespace) -> list[str]:
    return list(args.host or [DEFAULT_HOST])


def _client(args: argparse.Namespace) -> UbloxControlClient:
    try:
        tls = client_tls(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return UbloxControlClient(_hosts(args), tls)


def _rpc_error(err: grpc.RpcError) -> int:
    code = err.code()
    print(f"error: {code.name if code else 'UNKNOWN'}: {err.details()}", file=sys.stderr)
    return 1


def _init(args: argparse.Namespace) -> int:
    try:
        f9t = load_f9t_config(args.f9t_config)
    except ConfigError as err:
        print(render_problems(err), file=sys.stderr)
        return 2
    try:
        cfg = chip_config(f9t, args.chip)
    except ValueError as exc:
        print(f"error: {args.f9t_config}: --chip {args.chip}: {exc}", file=sys.stderr)
        return 2
    rc = 0
    try:
        with _client(args) as client:
            replies = client.init_f9t(cfg, force_init=args.force, timeout=args.timeout)
    except grpc.RpcError as err:
        return _rpc_error(err)
    for host, reply in replies.items():
        status = pb.InitF9tResponse.InitStatus.Name(reply.init_status)
        print(f"{host}: {status}")
        for line in reply.message.splitlines():
            print(f"  {line}")
        if reply.init_status != pb.InitF9tResponse.SUCCESS:
            rc = 1
    return rc


def _capture(args: argparse.Namespace) -> int:
    stop = threading.Event()
    timer = None
    if args.duration is not None:
        timer = threading.Timer(args.duration, stop.set)
        timer.daemon = True
        timer.start()
    render = json_line if args.json else format_line
    try:
        with _client(args) as client:
            for item in client.capture(args.patterns, stop_event=stop):
                print(render(item.host, item.response), flush=True)
    except grpc.RpcError as err:
        return _rpc_error(err)
    finally:
        if timer is not None:
            timer.cancel()
    return 0


def _poll(args: argparse.Namespace) -> int:
    render = json_line if args.json else format_line
    try:
        with _client(args) as client:
            entries = client.poll(args.patterns)
    except grpc.RpcError as err:
        return _rpc_error(err)
    for item in entries:
        print(render(item.host, item.response))
    return 1 if any(e.response.type == pb.CaptureUbloxResponse.ERROR for e in entries) else 0
