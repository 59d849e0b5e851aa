"""Pacing one job run's Google calls by its instance's Cloud project quotas (bss.gateway.quota).

Before each call the gateway asks the pacer: a short wait is slept in the thread; a longer one
raises QuotaWait, and the job gives its thread back until its turn. A rate-limit answer from
Google slows the project's key down for every worker.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from redis.exceptions import RedisError

from bss.crypto import Vault
from bss.errors import BssError, QuotaWait
from bss.gateway import metrics
from bss.gateway.credentials import decrypted
from bss.gateway.quota import QuotaKey, QuotaLimiter, quota_limiter_from_settings
from bss.models import Instance, InstanceMode
from bss.settings import Settings

log = logging.getLogger(__name__)

#: The APIs paced, by the short names of settings, instances' `quotas` and the gateway.
PACED_APIS = ("reseller", "admin", "licensing", "gmail")
# An OAuth client id begins with its Cloud project's number.
_PROJECT_NUMBER = re.compile(r"^(\d+)-[^.]+\.apps\.googleusercontent\.com$")


class CallPacer(Protocol):
    """What the gateway asks before and after its calls (Pacer, or a stand-in in tests)."""

    def limit(self, api: str) -> float | None: ...

    def before_call(self, api: str, n: int = 1, *, give_back: bool = True) -> None: ...

    def rate_limited(self, api: str, retry_after: float | None = None) -> None: ...


def project_of(instance: Instance, *, vault: Vault) -> str:
    """The Cloud project an instance's calls count against: the number that begins its OAuth
    client id, or its service-account key's project_id; else a stable name from the client id
    (two instances of one client then share a quota, as they do at Google)."""
    if instance.mode == InstanceMode.SERVICE_ACCOUNT and instance.service_account_key_enc:
        try:
            key = json.loads(decrypted(vault, instance.service_account_key_enc))
            project = key.get("project_id")
        except (BssError, ValueError, AttributeError):
            project = None  # the credentials will say what is wrong with the key
        if project:
            return str(project)
    match = _PROJECT_NUMBER.match(instance.client_id or "")
    if match:
        return match.group(1)
    return "client-" + hashlib.sha256((instance.client_id or "").encode()).hexdigest()[:12]


def instance_limits(instance: Instance, settings: Settings) -> dict[str, float]:
    """Calls per second by API: the settings' defaults, overridden by the instance's `quotas`."""
    limits = {api: float(getattr(settings, f"quota_{api}")) for api in PACED_APIS}
    for api, value in (instance.quotas or {}).items():
        if api in limits and isinstance(value, int | float) and value > 0:
            limits[api] = float(value)
    return limits


class Pacer:
    """One job run's pacing of its instance's calls, by API, through the shared limiter."""

    def __init__(
        self,
        *,
        limiter: QuotaLimiter,
        project: str,
        limits: Mapping[str, float],
        max_sleep: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limiter = limiter
        self.project = project
        self.limits = dict(limits)
        self.max_sleep = max_sleep
        self.sleep = sleep

    def limit(self, api: str) -> float | None:
        """Calls per second allowed for `api` (None: not paced)."""
        return self.limits.get(api)

    def before_call(self, api: str, n: int = 1, *, give_back: bool = True) -> None:
        """Return when `n` calls of `api` may go: a wait up to `max_sleep` is booked and slept
        here; a longer one raises QuotaWait (the job gives its thread back), unless the caller
        cannot give it back (`give_back=False`: any wait is slept here)."""
        limit = self.limits.get(api)
        if limit is None:
            return
        key = QuotaKey(self.project, api)
        max_wait = self.max_sleep if give_back else float("inf")
        try:
            wait = self.limiter.reserve(key, limit, n, max_wait=max_wait)
        except RedisError as exc:  # calls go unpaced; Google's answers still slow them
            log.warning("quota limiter unavailable, %s call not paced: %s", api, exc)
            return
        if wait > max_wait:
            raise self._give_back(key, limit, n, wait)
        if wait > 0:
            self.sleep(wait)
            metrics.quota_waited(self.project, api, wait)

    def _give_back(self, key: QuotaKey, limit: float, n: int, wait: float) -> QuotaWait:
        try:
            seconds = self.limiter.book_return(key, limit, n, wait)
        except RedisError as exc:
            log.warning("quota limiter unavailable, waiting %.1fs: %s", wait, exc)
            seconds = wait
        metrics.quota_deferred(self.project, key.api)
        return QuotaWait(key.api, self.project, seconds, limit)

    def rate_limited(self, api: str, retry_after: float | None = None) -> None:
        """Google answered a call of `api` with a rate limit: slow the project's key down."""
        metrics.rate_limited(self.project, api)
        if api not in self.limits:
            return
        try:
            share = self.limiter.slow_down(QuotaKey(self.project, api), retry_after)
        except RedisError as exc:
            log.warning("quota limiter unavailable, %s not slowed down: %s", api, exc)
            return
        log.info(
            "rate limited by Google: %s calls of project %s slowed to %.0f%% of their pace%s",
            api,
            self.project,
            share * 100,
            f", none for {retry_after:g}s" if retry_after else "",
        )


def pacer_for(
    instance: Instance, *, limiter: QuotaLimiter, settings: Settings, vault: Vault
) -> Pacer:
    """The pacer of one run of a job of `instance`: its project, its limits."""
    return Pacer(
        limiter=limiter,
        project=project_of(instance, vault=vault),
        limits=instance_limits(instance, settings),
        max_sleep=settings.quota_max_sleep_seconds,
    )


def pacer_factory(settings: Settings, vault: Vault) -> Callable[[Instance], Any] | None:
    """What the job runner calls for each job run (None without Redis: no pacing)."""
    limiter = quota_limiter_from_settings(settings)
    if limiter is None:
        return None

    def factory(instance: Instance) -> Pacer:
        return pacer_for(instance, limiter=limiter, settings=settings, vault=vault)

    return factory
