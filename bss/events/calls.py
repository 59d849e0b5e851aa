"""Google calls made outside a job (registration, pulls, reconciliation): the instance's
Gateway with the shared token cache and its Cloud project's pacing, and a count of the calls."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bss.crypto import vault_from_settings
from bss.errors import QuotaWait
from bss.gateway import (
    CallRecord,
    Gateway,
    fingerprint,
    instance_credentials,
    pacer_factory,
    token_cache_from_settings,
)
from bss.models import Instance
from bss.settings import Settings

# A wait for quota longer than this is given up (the next reconciliation tries again).
MAX_QUOTA_WAIT_SECONDS = 120.0


@dataclass
class CallCounter:
    """Every Google call attempt made, by method (what `bss reconcile` and the bench print)."""

    calls: list[CallRecord] = field(default_factory=list)

    def __call__(self, call: CallRecord) -> None:
        self.calls.append(call)

    @property
    def total(self) -> int:
        return len(self.calls)

    def by_method(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for call in self.calls:
            counts[call.method] = counts.get(call.method, 0) + 1
        return counts


_PARTS: dict[int, tuple[Settings, tuple[Any, Any, Any]]] = {}
_PARTS_LOCK = threading.Lock()


def _shared_parts(settings: Settings) -> tuple[Any, Any, Any]:
    """The vault, token cache and pacer factory of `settings`, made once per process (each
    holds its own Redis connections): the scheduler pulls and reconciles every few seconds."""
    with _PARTS_LOCK:
        held = _PARTS.get(id(settings))
        if held is None or held[0] is not settings:
            vault = vault_from_settings(settings)
            cache = token_cache_from_settings(settings, vault)
            parts = (vault, cache, pacer_factory(settings, vault))
            if len(_PARTS) >= 8:
                _PARTS.clear()
            held = _PARTS[id(settings)] = (settings, parts)
        return held[1]


def instance_gateway(
    settings: Settings, instance: Instance, *, record: Callable[[CallRecord], None] | None = None
) -> Gateway:
    """A Gateway acting as `instance`: its credentials behind the token cache shared with the
    workers, its calls paced by its Cloud project's quota (when Redis is configured)."""
    vault, cache, factory = _shared_parts(settings)
    credentials: Any = instance_credentials(instance, vault=vault, settings=settings)
    if cache is not None and instance.id is not None:
        grant = fingerprint(
            instance.mode,
            instance.refresh_token_enc or instance.service_account_key_enc,
            instance.delegated_admin,
        )
        credentials = cache.wrap(credentials, instance_id=instance.id, grant=grant)
    extra = {"pacer": factory(instance)} if factory else {}
    return Gateway(settings=settings, credentials=credentials, record=record, **extra)


def call_waiting_for_quota(
    gateway: Gateway,
    method: str,
    request_of: Callable[[Any], Any],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """`gateway.call`, waiting here when the project's quota is spent for now (no job to give
    the thread back to): quota-aware, as a job's calls are."""
    waited = 0.0
    while True:
        try:
            return gateway.call(method, request_of)
        except QuotaWait as exc:
            if waited + exc.seconds > MAX_QUOTA_WAIT_SECONDS:
                raise
            sleep(exc.seconds)
            waited += exc.seconds
