"""Mutual TLS to a back-end with its own CA: the client certificate and the CA file from
`backend set` are what the adapter presents and trusts."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from bxtest import Bankwx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bankwx_cli.backend.client import BackendClient
from bankwx_cli.backend.errors import BackendUnavailableError
from bankwx_cli.sandbox.app import SandboxApp
from bankwx_cli.sandbox.server import bind_socket, build_state

KEY = "tls-key"


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    ip: str | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name, issuer_key = (subject, key) if issuer is None else issuer
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(
    folder: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


class Pki:
    def __init__(self, folder: Path) -> None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _issue("bank test CA", ca_key, None, ca=True)
        self.ca, _ = _write(folder, "ca", ca, ca_key)
        server_key = ec.generate_private_key(ec.SECP256R1())
        server = _issue("127.0.0.1", server_key, ("bank test CA", ca_key), ip="127.0.0.1")
        self.server_cert, self.server_key = _write(folder, "server", server, server_key)
        client_key = ec.generate_private_key(ec.SECP256R1())
        client = _issue("bankwx", client_key, ("bank test CA", ca_key))
        self.client_cert, self.client_key = _write(folder, "client", client, client_key)


@pytest.fixture
def tls_backend(tmp_path: Path) -> Iterator[tuple[str, Pki]]:
    """The sandbox over HTTPS, asking for a client certificate signed by the test CA."""
    pki = Pki(tmp_path)
    state = build_state(tmp_path / "bank.db", seed=1, key=KEY)
    sock = bind_socket("127.0.0.1", 0)
    config = uvicorn.Config(
        SandboxApp(state),
        log_level="critical",
        access_log=False,
        lifespan="off",
        ssl_certfile=str(pki.server_cert),
        ssl_keyfile=str(pki.server_key),
        ssl_ca_certs=str(pki.ca),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"https://127.0.0.1:{sock.getsockname()[1]}", pki
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        state.bank.close()


def test_mutual_tls_with_the_banks_ca(tls_backend: tuple[str, Pki]) -> None:
    url, pki = tls_backend
    cert = (str(pki.client_cert), str(pki.client_key))
    adapter = BackendClient(url, api_key=KEY, client_cert=cert, ca_file=str(pki.ca))
    try:
        assert adapter.health().status == "ok"
    finally:
        adapter.close()


def test_an_unknown_ca_is_refused(tls_backend: tuple[str, Pki]) -> None:
    url, pki = tls_backend
    cert = (str(pki.client_cert), str(pki.client_key))
    adapter = BackendClient(url, api_key=KEY, client_cert=cert)  # the system's CAs only
    try:
        with pytest.raises(BackendUnavailableError) as refused:
            adapter.health()
    finally:
        adapter.close()
    assert refused.value.reason == "unreachable"
    assert "TLS failed (certificate verify failed)" in str(refused.value)


def test_without_a_client_certificate_the_back_end_refuses(tls_backend: tuple[str, Pki]) -> None:
    url, pki = tls_backend
    adapter = BackendClient(url, api_key=KEY, ca_file=str(pki.ca))
    try:
        with pytest.raises(BackendUnavailableError) as refused:
            adapter.health()
    finally:
        adapter.close()
    assert refused.value.reason == "unreachable"


def test_backend_set_with_certificate_and_ca(
    store_ready: Bankwx, tls_backend: tuple[str, Pki]
) -> None:
    url, pki = tls_backend
    result = store_ready(
        "backend", "set", "--url", url, "--api-key", "-",
        "--client-cert", str(pki.client_cert), "--client-key", str(pki.client_key),
        "--ca-file", str(pki.ca), input=KEY,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    shown = json.loads(store_ready("backend", "show", "--format", "json").stdout)
    assert shown["client_cert"] == str(pki.client_cert)
    assert shown["ca_file"] == str(pki.ca)
    assert store_ready("backend", "check").exit_code == 0
