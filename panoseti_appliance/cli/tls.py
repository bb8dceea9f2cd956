"""The `--tls-*` options `panoseti daq` and `panoseti ublox` share (docs/security.md)."""

from __future__ import annotations

import argparse

from panoseti_appliance.multihost import ClientTls


def add_tls_arguments(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    """Add --tls-ca, --tls-cert, --tls-key (`suppress`: defaults left to an outer parser)."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--tls-ca",
        metavar="PEM",
        default=default,
        help="connect to TCP servers with TLS, trusting this CA certificate (the node's "
        "access.tls.cert_file issuer); unix:// servers stay plaintext",
    )
    parser.add_argument(
        "--tls-cert",
        metavar="PEM",
        default=default,
        help="client certificate for servers that require one (with --tls-key)",
    )
    parser.add_argument(
        "--tls-key", metavar="PEM", default=default, help="private key of --tls-cert"
    )


def client_tls(args: argparse.Namespace) -> ClientTls | None:
    """The TLS the options ask for, None for plaintext; ValueError for an incomplete set."""
    ca = getattr(args, "tls_ca", None)
    cert = getattr(args, "tls_cert", None)
    key = getattr(args, "tls_key", None)
    if (cert is None) != (key is None):
        raise ValueError("--tls-cert and --tls-key go together; give both or neither")
    if ca is None:
        if cert is not None:
            raise ValueError("--tls-cert needs --tls-ca (the CA of the server's certificate)")
        return None
    return ClientTls(ca, cert, key)
