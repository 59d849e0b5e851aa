"""What every Google caller outside a job shares in one process (the vault, the access-token
cache, the quota pacing), and a Gateway acting as an instance built from them: the scheduler's
pulls and reconciliations, and the mail a worker sends as an instance or a mail sender."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.auth.credentials import Credentials

from bss.crypto import Vault, vault_from_settings
from bss.gateway.credentials import instance_credentials
from bss.gateway.gateway import CallRecord, Gateway
from bss.gateway.pacing import pacer_factory
from bss.gateway.tokens import TokenCache, fingerprint, token_cache_from_settings
from bss.models import Instance
from bss.settings import Settings


@dataclass(frozen=True)
class SharedParts:
    """The vault, the token cache (None without Redis) and the pacer factory of one settings."""

    vault: Vault
    token_cache: TokenCache | None
    pacer_factory: Callable[[Instance], Any] | None


_PARTS: dict[int, tuple[Settings, SharedParts]] = {}
_PARTS_LOCK = threading.Lock()


def shared_parts(settings: Settings) -> SharedParts:
    """The parts of `settings`, made once per process (each holds its own Redis connections):
    the scheduler pulls and reconciles every few seconds, and a worker sends mail all day."""
    with _PARTS_LOCK:
        held = _PARTS.get(id(settings))
        if held is None or held[0] is not settings:
            vault = vault_from_settings(settings)
            parts = SharedParts(
                vault=vault,
                token_cache=token_cache_from_settings(settings, vault),
                pacer_factory=pacer_factory(settings, vault),
            )
            if len(_PARTS) >= 8:
                _PARTS.clear()
            held = _PARTS[id(settings)] = (settings, parts)
        return held[1]


def cached_credentials(
    instance: Instance, *, vault: Vault, settings: Settings, cache: TokenCache | None
) -> Credentials:
    """The instance's credentials, taking their access token from `cache` (when there is one)
    so that one refresh serves every process for the token's lifetime."""
    credentials: Credentials = instance_credentials(instance, vault=vault, settings=settings)
    if cache is None or instance.id is None:
        return credentials
    grant = fingerprint(
        instance.mode,
        instance.refresh_token_enc or instance.service_account_key_enc,
        instance.delegated_admin,
    )
    return cache.wrap(credentials, instance_id=instance.id, grant=grant)


def instance_gateway(
    settings: Settings, instance: Instance, *, record: Callable[[CallRecord], None] | None = None
) -> Gateway:
    """A Gateway acting as `instance`: its credentials behind the token cache shared with the
    workers, its calls paced by its Cloud project's quota (when Redis is configured)."""
    parts = shared_parts(settings)
    credentials = cached_credentials(
        instance, vault=parts.vault, settings=settings, cache=parts.token_cache
    )
    extra = {"pacer": parts.pacer_factory(instance)} if parts.pacer_factory else {}
    return Gateway(settings=settings, credentials=credentials, record=record, **extra)
