"""Rate limits (Flask-Limiter), counted in Redis so every web process shares them."""

from __future__ import annotations

from flask import Flask, current_app, request
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


# Blueprints without a rate limit of their own, whose requests skip the limiter's lookups (3-4 %
# of an accepted order's CPU): the billing API, whose pace the fair share of the workers sets,
# and Google's pushes. Limits exist only where a view is decorated (default_limits is empty).
UNLIMITED_BLUEPRINTS = frozenset({"api", "google_events"})


@limiter.request_filter
def _unlimited() -> bool:
    return request.blueprint in UNLIMITED_BLUEPRINTS


def sign_in_limit() -> str:
    """Failed sign-ins allowed per client address (BSS_SIGN_IN_RATE_LIMIT)."""
    return str(current_app.config["BSS_SETTINGS"].sign_in_rate_limit)


def failed(response) -> bool:  # type: ignore[no-untyped-def]
    """Only refused attempts count: a successful sign-in redirects."""
    return response.status_code != 302
