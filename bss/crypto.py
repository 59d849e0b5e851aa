"""Encryption of secrets at rest (Fernet, several keys for rotation) and API-key hashing."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bss.errors import ConfigurationError
from bss.settings import Settings

DEV_KEY_FILE = "secret.keys"
KEY_ID_PREFIX = "k-"


def key_id(key: str) -> str:
    """A key's public name: a short fingerprint that tells keys apart and reveals nothing of the
    key, so backups, `bss keys list` and error messages can name a key without holding it."""
    return KEY_ID_PREFIX + hashlib.sha256(key.strip().encode()).hexdigest()[:12]


class Vault:
    """Encrypts with the first key; decrypts with any, so keys can be rotated in place."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ConfigurationError("No secret-encryption key: set BSS_SECRET_KEYS.")
        try:
            self._fernets = [Fernet(k.encode()) for k in keys]
            self._ids = [key_id(k) for k in keys]
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                "BSS_SECRET_KEYS holds a value that is not a Fernet key "
                "(generate one with `bss keys generate`)."
            ) from exc
        self._multi = MultiFernet(self._fernets)

    def encrypt(self, plaintext: str) -> str:
        """Ciphertext of `plaintext` under the primary key."""
        return self._multi.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        """Plaintext of a value encrypted under any configured key."""
        try:
            return self._multi.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ConfigurationError(
                "A stored secret cannot be decrypted with the configured keys: "
                "was a key removed from BSS_SECRET_KEYS before `bss keys rotate` finished?"
            ) from exc

    def rotate(self, ciphertext: str) -> str:
        """The same secret re-encrypted under the primary key."""
        return self._multi.rotate(ciphertext.encode()).decode()

    @property
    def key_ids(self) -> list[str]:
        """The ids of the configured keys, the primary first."""
        return list(self._ids)

    def key_id_of(self, ciphertext: str) -> str | None:
        """The id of the configured key that decrypts `ciphertext`, or None when none does
        (a Fernet token does not name its key: each key is tried in turn)."""
        token = ciphertext.encode()
        for kid, fernet in zip(self._ids, self._fernets, strict=True):
            try:
                fernet.decrypt(token)
            except InvalidToken:
                continue
            return kid
        return None


def generate_key() -> str:
    """A new Fernet key."""
    return Fernet.generate_key().decode()


def load_keys(settings: Settings, *, create: bool = True) -> list[str]:
    """The configured keys; outside production a key file under BSS_HOME is made on first use
    (unless `create` is false: then no keys, an empty list, when none is configured)."""
    keys = [k.strip() for k in settings.secret_keys.split(",") if k.strip()]
    if keys:
        return keys
    if settings.is_production:
        raise ConfigurationError("BSS_SECRET_KEYS must be set in production.")
    path = Path(settings.home) / DEV_KEY_FILE
    if not path.exists():
        if not create:
            return []
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(generate_key() + "\n")
        path.chmod(0o600)
    return [k.strip() for k in path.read_text().split(",") if k.strip()]


def vault_from_settings(settings: Settings) -> Vault:
    """The vault for the configured keys."""
    return Vault(load_keys(settings))


def new_api_key() -> str:
    """A fresh API key: a short readable prefix and 32 random bytes."""
    return "bss_" + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """The stored form of an API key. Keys are 256 random bits, so a plain SHA-256 suffices and
    survives rotation of the encryption keys."""
    return hashlib.sha256(key.encode()).hexdigest()
