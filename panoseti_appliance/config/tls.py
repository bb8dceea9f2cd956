"""Checks of the PEM files `access.tls` names, so a bad path or file stops the load, not a client.

The checks load the files the way the daemons' TLS will (Python's `ssl`, the same OpenSSL
formats gRPC reads), so a file that passes here is one gRPC accepts; each error names the file
and what to do about it.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path


def readable_file(path: Path, what: str) -> Path:
    """`path` must be an existing, readable regular file; ValueError saying how to fix it."""
    if not path.is_absolute():
        raise ValueError(f"{what} {str(path)!r} is relative; give an absolute path")
    if not path.exists():
        raise ValueError(f"{what} {path} does not exist; create it or fix the path")
    if not path.is_file():
        raise ValueError(f"{what} {path} is not a regular file; give the PEM file's path")
    if not os.access(path, os.R_OK):
        raise ValueError(
            f"{what} {path} is not readable by this user; make it readable by the daemon's "
            "user (group panoseti, mode 0640)"
        )
    return path


def check_cert_and_key(cert_file: Path, key_file: Path) -> None:
    """The certificate chain and its private key parse as PEM and belong together."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        raise ValueError(
            f"{cert_file} and {key_file} are not a PEM certificate and its unencrypted PEM "
            f"private key ({exc.reason or exc}); give the node's certificate chain as cert_file "
            "and the key it was issued for as key_file"
        ) from None


def check_ca(ca_file: Path) -> None:
    """`ca_file` holds at least one PEM CA certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=ca_file)
    except ssl.SSLError as exc:
        raise ValueError(
            f"{ca_file} holds no PEM CA certificate ({exc.reason or exc}); give the PEM file "
            "of the CA that issues the client certificates"
        ) from None
