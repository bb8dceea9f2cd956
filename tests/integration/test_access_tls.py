"""TLS and mutual TLS on the daemons' TCP addresses (docs/security.md), with certificates made
for the test by openssl: plaintext clients refused, clients trusting the CA served, client
certificates required under mTLS, bad PEM settings stopped by `panoseti config check`."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2

from panoseti_appliance._proto import daq_data_pb2_grpc as pb_grpc
from panoseti_appliance.multihost import ClientTls, sync_channel
from tests.certs import Certs, make_certs
from tests.daemons import Daemon, clean_environ, free_tcp_port, rpc_details, running_daemon
from tests.integration.test_daqdata_support import (
    init_request,
    rpc_error,
    settings_for,
    stream_request,
    upload_images,
)

PANOSETI = [sys.executable, "-m", "panoseti_appliance.cli.main"]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def tls_settings(certs: Certs, mutual: bool = False) -> dict[str, Any]:
    tls: dict[str, Any] = {
        "cert_file": str(certs.path("server.crt")),
        "key_file": str(certs.path("server.key")),
    }
    if mutual:
        tls |= {"client_ca_file": str(certs.path("ca.crt")), "require_client_cert": True}
    return tls


@contextlib.contextmanager
def daqdata_with(tmp_path: Path, access: Mapping[str, Any]) -> Iterator[tuple[Daemon, str]]:
    """DaqData with `access` settings; yields it and its TCP address (health over its unix
    socket, which stays plaintext)."""
    port = free_tcp_port()
    settings = settings_for(tmp_path, port, {"access": access})
    unix = f"unix://{tmp_path / 'grpc' / 'daqdata.sock'}"
    with running_daemon("panoseti-daqdata", tmp_path, settings, unix) as daemon:
        yield daemon, f"127.0.0.1:{port}"


def ping(channel: grpc.Channel) -> None:
    pb_grpc.DaqDataStub(channel).Ping(empty_pb2.Empty(), timeout=10)


def test_plaintext_client_is_refused_and_a_client_trusting_the_ca_pings_and_streams(
    tmp_path: Path, certs: Certs
) -> None:
    with daqdata_with(tmp_path, {"tls": tls_settings(certs)}) as (daemon, tcp):
        with grpc.insecure_channel(tcp) as plain:
            err = rpc_error(lambda: ping(plain))
        assert err.code() == grpc.StatusCode.UNAVAILABLE

        tls = ClientTls(str(certs.path("ca.crt")))
        with sync_channel(tcp, tls) as secure:
            ping(secure)
            call = pb_grpc.DaqDataStub(secure).StreamImages(stream_request(), timeout=30)
            with sync_channel(daemon.target) as local:  # the unix socket: plaintext
                pb_grpc.DaqDataStub(local).UploadImages(iter(upload_images(1)), timeout=10)
            image = next(call).pano_image
            call.cancel()
        assert image.module_id == 7

        done = subprocess.run(
            [*PANOSETI, "daq", "ping", "--host", tcp, "--tls-ca", str(certs.path("ca.crt"))],
            capture_output=True,
            text=True,
            env=clean_environ(),
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_mutual_tls_refuses_clients_without_a_certificate_and_admits_writes_with_one(
    tmp_path: Path, certs: Certs
) -> None:
    access = {"tls": tls_settings(certs, mutual=True), "daqdata_write": "authenticated"}
    with daqdata_with(tmp_path, access) as (_, tcp):
        ca = str(certs.path("ca.crt"))
        with sync_channel(tcp, ClientTls(ca)) as anonymous:
            err = rpc_error(lambda: ping(anonymous))
        assert err.code() == grpc.StatusCode.UNAVAILABLE

        client = ClientTls(ca, str(certs.path("client.crt")), str(certs.path("client.key")))
        with sync_channel(tcp, client) as known:
            ping(known)
            reply = pb_grpc.DaqDataStub(known).InitHpIo(
                init_request(data_dir=str(tmp_path / "data")), timeout=20
            )
        assert reply.success, reply.error_message


def _check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "node.yaml"
    config.write_text(text)
    return subprocess.run(
        [*PANOSETI, "config", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        env=clean_environ(),
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        pytest.param(
            lambda tmp: tmp / "nowhere.crt",
            "{cert} does not exist; create it or fix the path",
            id="missing",
        ),
        pytest.param(
            lambda tmp: _write(tmp / "junk.crt", "not a certificate\n"),
            "are not a PEM certificate and its unencrypted PEM private key",
            id="not-pem",
        ),
    ],
)
def test_config_check_names_a_bad_pem_file_and_the_fix(
    tmp_path: Path, certs: Certs, make: Callable[[Path], Path], problem: str
) -> None:
    cert = make(tmp_path)
    done = _check(
        tmp_path,
        f"access:\n  tls:\n    cert_file: {cert}\n    key_file: {certs.path('server.key')}\n",
    )
    assert done.returncode != 0
    out = done.stdout + done.stderr
    assert "access.tls.cert_file" in out, out
    assert problem.format(cert=cert) in out, out


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_config_check_wants_the_client_ca_for_required_client_certs(
    tmp_path: Path, certs: Certs
) -> None:
    done = _check(
        tmp_path,
        f"access:\n  tls:\n    cert_file: {certs.path('server.crt')}\n"
        f"    key_file: {certs.path('server.key')}\n    require_client_cert: true\n",
    )
    assert done.returncode != 0
    out = done.stdout + done.stderr
    assert "access.tls.client_ca_file" in out, out
    assert "require_client_cert is true but client_ca_file is missing" in out, out


def test_write_denied_message_names_the_setting(tmp_path: Path, certs: Certs) -> None:
    access = {"tls": tls_settings(certs), "daqdata_write": "authenticated"}
    tls = ClientTls(str(certs.path("ca.crt")))
    with daqdata_with(tmp_path, access) as (_, tcp), sync_channel(tcp, tls) as secure:
        stub = pb_grpc.DaqDataStub(secure)
        err = rpc_error(lambda: stub.InitHpIo(init_request(), timeout=20))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "access.daqdata_write is 'authenticated'" in rpc_details(err)
