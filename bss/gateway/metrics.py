"""Counters of what a process does with Google, for Prometheus.

In worker processes Dramatiq's Prometheus middleware switches prometheus_client to its
multiprocess mode when a process boots and serves every process's metrics on one port
(`dramatiq_prom_port`, 9191 by default); the metrics here are created on first use, after that
switch, so they are served there beside Dramatiq's own. A lock makes the first use safe when a fresh
process's threads all make their first Google call at once (registering twice raises).
"""

from __future__ import annotations

import logging
import threading
from types import SimpleNamespace
from typing import Any

log = logging.getLogger(__name__)


_lock = threading.Lock()
_built: list[Any] = []


def _metrics() -> Any:
    if _built:
        return _built[0]
    with _lock:
        if not _built:
            _built.append(_build())
    return _built[0]


def _build() -> Any:
    import prometheus_client as prom

    return SimpleNamespace(
        google_calls=prom.Counter(
            "bss_google_calls_total",
            "Google API calls by API, method and HTTP status",
            ["api", "method", "status"],
        ),
        google_seconds=prom.Histogram(
            "bss_google_call_seconds",
            "Duration of Google API calls",
            ["api", "method"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        ),
        token_refreshes=prom.Counter(
            "bss_token_refreshes_total", "Access-token refreshes at Google's token endpoint"
        ),
        quota_wait=prom.Counter(
            "bss_quota_wait_seconds_total",
            "Seconds Google calls waited in their thread for their Cloud project's quota",
            ["project", "api"],
        ),
        quota_deferred=prom.Counter(
            "bss_quota_deferred_total",
            "Jobs that gave their thread back to wait for their Cloud project's quota",
            ["project", "api"],
        ),
        rate_limited=prom.Counter(
            "bss_google_rate_limited_total",
            "Rate-limit answers from Google, by Cloud project and API",
            ["project", "api"],
        ),
    )


def google_call(method: str, status: int | None, seconds: float) -> None:
    """Count one Google call (`method` is Google's id, e.g. reseller.customers.get).

    Never raises: the call has gone out, and a counter must not cost the job an attempt.
    """
    api = method.split(".", 1)[0]
    try:
        m = _metrics()
        m.google_calls.labels(api, method, str(status) if status else "network_error").inc()
        m.google_seconds.labels(api, method).observe(seconds)
    except Exception:
        log.exception("could not count the Google call %s", method)


def token_refreshed() -> None:
    """Count one refresh of an access token (never raises, like google_call)."""
    try:
        _metrics().token_refreshes.inc()
    except Exception:
        log.exception("could not count a token refresh")


def quota_waited(project: str, api: str, seconds: float) -> None:
    """Count the seconds a call slept for quota (never raises, like google_call)."""
    try:
        _metrics().quota_wait.labels(project, api).inc(seconds)
    except Exception:
        log.exception("could not count a quota wait")


def quota_deferred(project: str, api: str) -> None:
    """Count a job that gave its thread back to wait for quota (never raises)."""
    try:
        _metrics().quota_deferred.labels(project, api).inc()
    except Exception:
        log.exception("could not count a quota deferral")


def rate_limited(project: str, api: str) -> None:
    """Count a rate-limit answer from Google (never raises)."""
    try:
        _metrics().rate_limited.labels(project, api).inc()
    except Exception:
        log.exception("could not count a rate-limit answer")
