"""Helpers the dashboard's pages share: the broker's Redis, redaction."""

from __future__ import annotations

from typing import Any

import redis

from web.deps import settings

# Keys whose values a page never shows, wherever they appear in a request or an output.
SECRET_WORDS = ("password", "secret", "token", "private_key", "api_key")
REDACTED = "[redacted]"
REFRESH_SECONDS = 5


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings().redis_url, socket_timeout=2, socket_connect_timeout=2)


def redacted(value: Any) -> Any:
    """`value` with the secrets under secret-looking keys replaced (a second line of defence:
    jobs store their secrets apart, encrypted). Flags and blanks under such keys stay as they
    are: `password_generated: true` tells what happened, and tells nothing of the password."""
    if isinstance(value, dict):
        return {
            k: _secret(v) if any(w in str(k).lower() for w in SECRET_WORDS) else redacted(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


def _secret(value: Any) -> Any:
    """A value under a secret-looking key: every string or number in it replaced."""
    if value is None or value == "" or isinstance(value, bool):
        return value
    if isinstance(value, dict):
        return {k: _secret(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_secret(v) for v in value]
    return REDACTED
