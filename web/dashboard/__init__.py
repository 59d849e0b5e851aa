"""The operator dashboard under /dashboard: overview, jobs, job detail, instances, Google events
and drift, mail, audit log.

Each page has a fragment endpoint (`.../live`) that the page polls to refresh itself, behind the
same sign-in and the same scope as the page.
"""

from __future__ import annotations

from flask import Flask, abort, request

from bss.models import UserRole
from web.dashboard import (
    audit,
    drift,
    events,
    instances,
    job_detail,
    jobs,
    mail,
    old_links,
    overview,
)
from web.dashboard.access import can_act, scope_of
from web.dashboard.common import REFRESH_SECONDS
from web.portal.access import current_user

BLUEPRINTS = (overview, jobs, job_detail, instances, events, drift, mail, audit, old_links)
# What a viewer may still post: signing in and out.
VIEWER_POSTS = {"auth.sign_in", "auth.sign_in_google", "auth.sign_out"}


def init_app(app: Flask) -> None:
    """Register the dashboard's pages."""
    for module in BLUEPRINTS:
        app.register_blueprint(module.bp)

    @app.before_request
    def _viewers_only_look() -> None:
        # Viewers are read-only everywhere, the portal's pages included (a viewer of one
        # distributor would otherwise pass the portal's "own distributor" checks).
        if request.method in ("GET", "HEAD", "OPTIONS") or request.endpoint in VIEWER_POSTS:
            return
        if request.blueprint == "api":  # authenticated by an API key, not a user
            return
        user = current_user()
        if user is not None and user.role == UserRole.VIEWER:
            abort(403, "Your role is read-only.")

    @app.context_processor
    def _dashboard_user() -> dict:
        user = current_user()
        return {
            "dashboard_can_act": bool(user and can_act(user)),
            "dashboard_all": bool(user and scope_of(user) is None),
            "refresh_seconds": REFRESH_SECONDS,
        }
