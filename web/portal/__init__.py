"""The distributor portal: sign-in, instances, and the Authenticate Instance flow, API keys and
webhook, notifications by e-mail."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from flask import Blueprint, Flask, Request, redirect, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect

from bss.accounts import session_secret
from web.portal import (
    api_access,
    auth,
    callback,
    instance_actions,
    instance_events,
    instances,
    notification_actions,  # noqa: F401 - routes the Notifications forms
    notifications,
)
from web.portal.access import current_user

csrf = CSRFProtect()


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, but a request without the cookie (every billing API call,
    every push from Google) gets its empty session without building the cookie's signing
    serializer first (1-2 % of an accepted order's CPU)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def init_app(app: Flask, *, csrf_exempt: Iterable[Blueprint] = ()) -> None:
    """Sessions, CSRF protection on every form, and the portal's blueprints."""
    settings = app.config["BSS_SETTINGS"]
    secure = settings.is_production or all(u.startswith("https://") for u in settings.base_urls)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = session_secret(settings)
    app.config.update(
        # __Host- cookies are only accepted over HTTPS, for this exact host and path.
        SESSION_COOKIE_NAME="__Host-bss_session" if secure else "bss_session",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_HTTPONLY=True,
        # Lax, not Strict: the OAuth callback is a top-level navigation coming from Google.
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.portal_session_hours),
        # A form may stay open as long as the session lasts.
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.session_interface = CookieSessions()
    csrf.init_app(app)
    for bp in csrf_exempt:  # APIs authenticated by a bearer key, not by the cookie
        csrf.exempt(bp)
    for module in (
        auth,
        instances,
        instance_actions,
        instance_events,
        callback,
        api_access,
        notifications,  # with its forms' routes (web.portal.notification_actions)
    ):
        app.register_blueprint(module.bp)
    app.context_processor(lambda: {"current_user": current_user()})
    # Pages link the SVG icon; browsers (and tabs on a JSON answer) still ask for this path.
    app.add_url_rule(
        "/favicon.ico",
        "favicon",
        lambda: redirect(url_for("static", filename="favicon.svg"), 301),
    )
