"""Who may see and do what on the dashboard.

Operators see every distributor and act on everything. Distributor admins see and act on their
own distributor. Viewers only look: at their distributor if they belong to one, else at every
distributor. Another distributor's job, instance or log entry is a 404, as if it did not exist;
a viewer pressing a button gets a 403 (they know the job exists: they are looking at it).
"""

from __future__ import annotations

from flask import abort, request
from werkzeug.exceptions import NotFound

from bss.accounts import ALL
from bss.jobs import Actor
from bss.models import Job, User, UserRole
from web.deps import db
from web.portal.access import require_user

NOTHING = -1  # a scope no distributor has: a user who belongs nowhere sees nothing


def scope_of(user: User) -> int | None:
    """The distributor id this user sees (ALL: every distributor)."""
    if user.role == UserRole.OPERATOR:
        return ALL
    if user.role == UserRole.VIEWER:
        return user.distributor_id if user.distributor_id is not None else ALL
    if user.role == UserRole.DISTRIBUTOR_ADMIN and user.distributor_id is not None:
        return user.distributor_id
    return NOTHING


def can_act(user: User) -> bool:
    """Whether this user may retry, cancel and run bulk actions (viewers may not)."""
    return user.role in (UserRole.OPERATOR, UserRole.DISTRIBUTOR_ADMIN) and (
        scope_of(user) != NOTHING
    )


def sees(user: User, distributor_id: int | None) -> bool:
    scope = scope_of(user)
    return scope is ALL or (distributor_id is not None and distributor_id == scope)


def scope() -> int | None:
    """The signed-in user's scope."""
    return scope_of(require_user())


def actor() -> Actor:
    """The signed-in user as the one acting; a viewer is refused (403)."""
    user = require_user()
    if not can_act(user):
        abort(403, "Your role is read-only: ask an operator to do this.")
    return Actor(name=user.email, source_ip=request.remote_addr)


def job_or_404(job_id: str) -> Job:
    """The job, if the signed-in user may see it; else 404."""
    job = db().get(Job, job_id)
    if job is None or not sees(require_user(), job.distributor_id):
        raise NotFound(f"No job {job_id!r}.")
    return job
