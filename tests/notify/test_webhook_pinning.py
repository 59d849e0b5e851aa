"""The pinned transport over TLS: it dials the checked address, yet SNI, the certificate check and
the Host header all use the URL's host name."""

from __future__ import annotations

import datetime
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bss.notify import post_pinned

HOOKS = "hooks.billing.example"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _cert(subject: str, key: Any, issuer: str, issuer_key: Any, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        builder = builder.add_extension(ski, critical=False)
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
        )
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
        builder = builder.add_extension(aki, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """An HTTPS endpoint on 127.0.0.1 with a certificate for hooks.billing.example only."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _cert("Test billing CA", ca_key, "Test billing CA", ca_key, ca=True)
    leaf = _cert(HOOKS, key, "Test billing CA", ca_key, ca=False)
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    (tmp_path / "leaf.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    seen: dict[str, Any] = {"sni": [], "hosts": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen["hosts"].append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            return None

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    context.sni_callback = lambda _sock, name, _ctx: seen["sni"].append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    seen.update(port=server.server_address[1], ca=str(tmp_path / "ca.pem"))
    yield seen
    server.shutdown()
    server.server_close()


def test_tls_to_a_pinned_address_verifies_the_host_name(tls_receiver):
    # Given no DNS knows hooks.billing.example, and its checked address is 127.0.0.1
    url = f"https://{HOOKS}:{tls_receiver['port']}/bss"
    # When we POST there over the pinned transport
    resp = post_pinned(url, address="127.0.0.1", data=b"{}", verify=tls_receiver["ca"], timeout=10)
    # Then the connection reached it, and it was told (and proved to be) hooks.billing.example
    assert resp.status_code == 204
    assert tls_receiver["sni"] == [HOOKS]
    assert tls_receiver["hosts"] == [f"{HOOKS}:{tls_receiver['port']}"]


def test_a_certificate_for_another_name_is_refused(tls_receiver):
    # The certificate is checked against the URL's name, not waved through for the address
    url = f"https://other.billing.example:{tls_receiver['port']}/bss"
    with pytest.raises(requests.exceptions.SSLError):
        post_pinned(url, address="127.0.0.1", data=b"{}", verify=tls_receiver["ca"], timeout=10)
    assert tls_receiver["hosts"] == []
