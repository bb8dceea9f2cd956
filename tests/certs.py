"""A throw-away CA, a server certificate for loopback and a client certificate, made with the
openssl command (Debian's openssl package) for the TLS tests."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _issue(directory: Path, name: str, ca: tuple[Path, Path], extensions: str) -> None:
    key, csr, cert = (directory / f"{name}.{ext}" for ext in ("key", "csr", "crt"))
    ext = directory / f"{name}.ext"
    ext.write_text(extensions)
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key))
    _openssl("req", "-new", "-key", str(key), "-subj", f"/CN={name}", "-out", str(csr))
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert),
    )  # fmt: skip


@dataclass(frozen=True)
class Certs:
    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name


def make_certs(directory: Path) -> Certs:
    """ca.crt/ca.key, server.crt/.key (localhost, 127.0.0.1) and client.crt/.key, all PEM."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = (directory / "ca.crt", directory / "ca.key")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
        "-keyout", str(ca[1]), "-out", str(ca[0]),
    )  # fmt: skip
    _issue(directory, "server", ca, "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _issue(directory, "client", ca, "extendedKeyUsage=clientAuth\n")
    return Certs(directory)
