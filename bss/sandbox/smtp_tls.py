"""The SMTP server's TLS: a self-signed certificate made at start, which clients trust by file.

Google's smtp.gmail.com presents a certificate from a public CA; the sandbox cannot, so clients
(the demo, the tests, our product through GOOGLE_SMTP_CA_FILE) trust this one certificate
instead, from the file ``--smtp-cert`` writes or from GET /_sandbox/smtp/certificate. It carries
the names a client may connect by, so host names are verified as with Google's.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Names every certificate covers, whatever --host says.
LOCAL_NAMES = ("localhost", "127.0.0.1")
#: How long the certificate is valid: it is made anew at each start.
VALIDITY = datetime.timedelta(days=365)


@dataclass(frozen=True)
class TlsIdentity:
    """A certificate and its private key, both PEM."""

    certificate_pem: str
    key_pem: str

    def server_context(self) -> ssl.SSLContext:
        """The context STARTTLS wraps a connection in (TLS 1.2 or later, as Gmail)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # load_cert_chain reads files only: hand it the PEMs through a private directory.
        with tempfile.TemporaryDirectory(prefix="sandbox-tls-") as folder:
            cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
            for path, text in ((cert, self.certificate_pem), (key, self.key_pem)):
                with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
                    f.write(text)
            context.load_cert_chain(cert, key)
        return context


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def self_signed(host: str) -> TlsIdentity:
    """A fresh P-256 key and a certificate for localhost, 127.0.0.1 and ``host``."""
    names = list(dict.fromkeys([*LOCAL_NAMES, host.strip("[]")]))
    names = [n for n in names if n and n not in ("0.0.0.0", "::")]  # noqa: S104 - not a name
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Google sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return TlsIdentity(
        certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )


def write_certificate(path: str, certificate_pem: str) -> None:
    """Write the certificate (never the key) to ``path``, replacing it whole, so a client
    reading it while the sandbox starts sees the old certificate or the new one."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".sandbox-smtp-", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(certificate_pem)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
