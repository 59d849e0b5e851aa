"""Rate limits (Flask-Limiter), counted in Redis so every web process shares them."""

from __future__ import annotations

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address, default_limits=[])


def init_app(app: Flask) -> None:
    settings = app.config["BSS_SETTINGS"]
    app.config.setdefault("RATELIMIT_STORAGE_URI", settings.redis_url or "memory://")
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "bss:ratelimit")
    # A Redis hiccup must not lock everybody out of the portal.
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    limiter.init_app(app)


def sign_in_limit() -> str:
    """Failed sign-ins allowed per client address (BSS_SIGN_IN_RATE_LIMIT)."""
    return str(current_app.config["BSS_SETTINGS"].sign_in_rate_limit)


def failed(response) -> bool:  # type: ignore[no-untyped-def]
    """Only refused attempts count: a successful sign-in redirects."""
    return response.status_code != 302
