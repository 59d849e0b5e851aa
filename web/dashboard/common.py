"""Helpers the dashboard's pages share: the broker's Redis, time formatting, redaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import redis

from bss.models import utcnow
from web.deps import settings

# Keys whose values a page never shows, wherever they appear in a request or an output.
SECRET_WORDS = ("password", "secret", "token", "private_key", "api_key")
REDACTED = "[redacted]"
REFRESH_SECONDS = 5


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings().redis_url, socket_timeout=2, socket_connect_timeout=2)


def redacted(value: Any) -> Any:
    """`value` with anything under a secret-looking key replaced (a second line of defence:
    jobs store their secrets apart, encrypted)."""
    if isinstance(value, dict):
        return {
            k: REDACTED
            if any(w in str(k).lower() for w in SECRET_WORDS) and v not in (None, "", False)
            else redacted(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


def ago(when: datetime | float | None) -> str:
    """ "12s ago", "3m ago", "2h ago", "4d ago" (or "" for nothing)."""
    if when is None:
        return ""
    seconds = (
        utcnow().timestamp() - when
        if isinstance(when, int | float)
        else (utcnow() - when).total_seconds()
    )
    return f"{duration(max(seconds, 0))} ago"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"
