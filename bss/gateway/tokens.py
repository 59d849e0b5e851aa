"""Access tokens shared by every process: one refresh per instance per token lifetime.

Each job builds its instance's credentials afresh, so without a shared cache every job would
refresh the token (Google counts these, and a busy instance would hammer the token endpoint).
The cache lives in Redis, encrypted with the vault; a refresh happens under a Redis lock, and
whoever waited on the lock takes the token the lock holder stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from google.auth import credentials as ga_credentials
from google.auth import exceptions as auth_exceptions
from redis.exceptions import LockError

from bss.crypto import Vault
from bss.gateway import metrics
from bss.settings import Settings

log = logging.getLogger(__name__)

KEY_PREFIX = "bss:token"
# Long enough for one refresh round-trip at the token endpoint, with its socket timeout.
LOCK_SECONDS = 60
# How long a process keeps the shared token it read, before it reads Redis again: a token
# another process dropped ("Refresh now", a refused refresh) may be used that much longer here,
# and Google's 401 for it makes this process look again at once.
LOCAL_SECONDS = 30.0

# Whose tokens: an instance's id, or another holder of a grant named as a string (a mail
# sender's "sender:<id>"), so that their keys never meet.
Owner = int | str
# Told (instance id, naive-UTC expiry) after each refresh, so that whoever shows an instance's
# health (kept by the instances wing, above this one) sees what the workers obtained.
OnRefresh = Callable[[int, datetime | None], None]


def fingerprint(*parts: str | None) -> str:
    """A short digest naming one grant (its encrypted refresh token, or key + subject)."""
    return hashlib.sha256("|".join(p or "" for p in parts).encode()).hexdigest()[:16]


class TokenCache:
    """Access tokens in Redis, encrypted, until `margin_seconds` before they expire."""

    def __init__(
        self,
        redis: Any,
        vault: Vault,
        *,
        margin_seconds: float = 300,
        on_refresh: OnRefresh | None = None,
    ) -> None:
        self.redis = redis
        self.vault = vault
        self.margin_seconds = margin_seconds
        self.on_refresh = on_refresh
        # key -> (token, naive-UTC expiry, time.monotonic() until which it is used as is):
        # a job reads its token here, not with a Redis round trip and a decryption each.
        self._local: dict[str, tuple[str, datetime | None, float]] = {}

    def _key(self, instance_id: Owner, grant: str) -> str:
        return f"{KEY_PREFIX}:{instance_id}:{grant}"

    def get(
        self, instance_id: Owner, grant: str, *, shared: bool = False
    ) -> tuple[str, datetime | None] | None:
        """The cached (token, naive-UTC expiry) for this grant, if any; `shared`: as Redis has
        it now, not as this process last read it."""
        key = self._key(instance_id, grant)
        local = self._local.get(key)
        if local and not shared and time.monotonic() < local[2]:
            return local[0], local[1]
        raw = self.redis.get(key)
        if not raw:
            self._local.pop(key, None)
            return None
        try:
            data = json.loads(self.vault.decrypt(raw.decode() if isinstance(raw, bytes) else raw))
        except Exception:  # unreadable (keys rotated away): just refresh
            return None
        expiry = data.get("expiry")
        when = datetime.fromtimestamp(expiry, UTC).replace(tzinfo=None) if expiry else None
        self._remember(key, data["token"], expiry)
        return data["token"], when

    def _remember(self, key: str, token: str, epoch: float | None) -> None:
        lasts = LOCAL_SECONDS
        if epoch:  # never past the time the shared copy itself would be dropped
            lasts = min(lasts, epoch - time.time() - self.margin_seconds)
        if lasts > 0:
            when = datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None) if epoch else None
            self._local[key] = (token, when, time.monotonic() + lasts)

    def put(self, instance_id: Owner, grant: str, token: str, expiry: datetime | None) -> None:
        """Store a fresh token until shortly before it expires."""
        epoch = expiry.replace(tzinfo=UTC).timestamp() if expiry else None
        ttl = int((epoch - time.time()) - self.margin_seconds) if epoch else 600
        if ttl <= 0:
            return
        value = self.vault.encrypt(json.dumps({"token": token, "expiry": epoch}))
        self.redis.set(self._key(instance_id, grant), value, ex=ttl)
        self._remember(self._key(instance_id, grant), token, epoch)

    def refreshed(self, instance_id: Owner, expiry: datetime | None) -> None:
        """Tell `on_refresh` about a new token; its failure never fails the job that refreshed."""
        if self.on_refresh is None or not isinstance(instance_id, int):
            return
        try:
            self.on_refresh(instance_id, expiry)
        except Exception:  # bookkeeping: the token itself is good
            log.warning("instance %s: the refresh was not recorded", instance_id, exc_info=True)

    def drop(self, instance_id: Owner, grant: str) -> None:
        """Forget the grant's token (it was refused)."""
        self._local.pop(self._key(instance_id, grant), None)
        self.redis.delete(self._key(instance_id, grant))

    def lock(self, instance_id: Owner, grant: str) -> Any:
        return self.redis.lock(
            f"{KEY_PREFIX}-lock:{instance_id}:{grant}",
            timeout=LOCK_SECONDS,
            blocking_timeout=LOCK_SECONDS,
        )

    def wrap(
        self, inner: ga_credentials.Credentials, *, instance_id: Owner, grant: str
    ) -> CachedCredentials:
        """Credentials that take their token from this cache and refresh under its lock."""
        return CachedCredentials(inner, cache=self, instance_id=instance_id, grant=grant)


class CachedCredentials(ga_credentials.Credentials):
    """google-auth credentials whose refresh goes through the shared TokenCache."""

    def __init__(
        self,
        inner: ga_credentials.Credentials,
        *,
        cache: TokenCache,
        instance_id: Owner,
        grant: str,
    ) -> None:
        super().__init__()
        self._inner = inner
        self._cache = cache
        self._instance_id = instance_id
        self._grant = grant
        # google-auth's background refresh thread would bypass the lock.
        self._use_non_blocking_refresh = False

    def forget(self) -> None:
        """Drop the token shared by every process, so that the next refresh asks Google (what a
        user's "Refresh now" means: a revoked grant must not look alive until its token ends)."""
        self._cache.drop(self._instance_id, self._grant)
        self.token = None

    def _take_cached(self, *, shared: bool = False) -> bool:
        cached = self._cache.get(self._instance_id, self._grant, shared=shared)
        # The token we hold was just refused (a 401): a cached copy of it is no better.
        if cached is None or cached[0] == self.token:
            return False
        self.token, self.expiry = cached
        return True

    def refresh(self, request: Any) -> None:
        """Take the shared token, or refresh it once for everybody under the Redis lock."""
        if self._take_cached():
            return
        lock = self._cache.lock(self._instance_id, self._grant)
        if not lock.acquire():
            raise auth_exceptions.RefreshError(
                "Timed out waiting for another process to refresh the token.", retryable=True
            )
        try:
            if self._take_cached(shared=True):  # another process may have refreshed it
                return
            try:
                self._inner.refresh(request)
            except auth_exceptions.RefreshError:
                self._cache.drop(self._instance_id, self._grant)
                raise
            metrics.token_refreshed()
            self.token, self.expiry = self._inner.token, self._inner.expiry
            if self.token:
                self._cache.put(self._instance_id, self._grant, self.token, self.expiry)
                self._cache.refreshed(self._instance_id, self.expiry)
        finally:
            # The lock may have expired meanwhile: then there is nothing to release.
            with contextlib.suppress(LockError):
                lock.release()


def token_cache_from_settings(
    settings: Settings, vault: Vault, *, on_refresh: OnRefresh | None = None
) -> TokenCache | None:
    """The shared token cache on REDIS_URL (None without Redis: each job then refreshes)."""
    if not settings.redis_url:
        return None
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=5)
    return TokenCache(
        client,
        vault,
        margin_seconds=settings.token_refresh_margin_seconds,
        on_refresh=on_refresh,
    )
