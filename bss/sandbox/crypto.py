"""RSA keys: the sandbox's OIDC signing key, service-account keys, JWKS and certificates."""

from __future__ import annotations

import base64
import datetime
import functools
import secrets
from typing import cast

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def new_private_key_pem() -> str:
    """A fresh 2048-bit RSA private key as PKCS#8 PEM (what Google puts in key files)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def new_key_id() -> str:
    return secrets.token_hex(20)


@functools.lru_cache(maxsize=256)
def _load_private_key(private_pem: str) -> rsa.RSAPrivateKey:
    # Every key the sandbox handles comes from new_private_key_pem, so it is RSA. Kept loaded:
    # loading checks the key, about 50 times the cost of a signature with it.
    return cast(
        rsa.RSAPrivateKey, serialization.load_pem_private_key(private_pem.encode(), password=None)
    )


def public_pem(private_pem: str) -> str:
    key = _load_private_key(private_pem)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwk(kid: str, private_pem: str) -> dict:
    """The public half of a key as a JWK, as Google publishes it."""
    key = _load_private_key(private_pem)
    numbers = key.public_key().public_numbers()
    return {
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
        "kid": kid,
        "n": _b64(numbers.n),
        "e": _b64(numbers.e),
    }


def certificate_pem(private_pem: str, common_name: str) -> str:
    """A self-signed X.509 certificate for the key (Google's x509 cert endpoints)."""
    key = _load_private_key(private_pem)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def sign(claims: dict, private_pem: str, kid: str) -> str:
    """An RS256 JWT."""
    return jwt.encode(
        claims, _load_private_key(private_pem), algorithm="RS256", headers={"kid": kid}
    )


def verify(token: str, public_key_pem: str) -> dict:
    """Check an RS256 signature and return the claims; times and audience are checked apart."""
    return jwt.decode(
        token,
        public_key_pem,
        algorithms=["RS256"],
        options={
            "verify_aud": False,
            "verify_exp": False,
            "verify_iat": False,
            "verify_nbf": False,
        },
    )


def unverified_header(token: str) -> dict:
    return jwt.get_unverified_header(token)


def unverified_claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})
