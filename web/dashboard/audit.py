"""The audit log: who did what, when, from where; newest first, a page at a time."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from sqlmodel import col, select

from bss.accounts import ALL
from bss.errors import ValidationFailed
from bss.models import AuditEntry, Distributor
from web.dashboard.access import scope
from web.deps import db
from web.portal.access import sign_in_required

bp = Blueprint("dashboard_audit", __name__, url_prefix="/dashboard")

PAGE_SIZE = 100


@bp.app_template_filter("for_people")
def for_people(value: Any) -> str:
    """A detail of an audit entry as a person reads it, not as Python prints it: lists
    comma-separated, yes / no, — for nothing, a mapping as `key: value` pairs."""
    if value is None or (isinstance(value, str | list | tuple | dict) and not value):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {for_people(v)}" for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(for_people(v) for v in value)
    return str(value)


def _context() -> dict[str, Any]:
    visible = scope()
    before = (request.args.get("before") or "").strip()
    if before and not before.isdigit():
        raise ValidationFailed(
            "The page position is invalid; follow the Older link.",
            details=[{"field": "before", "problem": "expected a number"}],
        )
    query = select(AuditEntry, Distributor).outerjoin(
        Distributor, col(Distributor.id) == col(AuditEntry.distributor_id)
    )
    if visible is not ALL:
        query = query.where(col(AuditEntry.distributor_id) == visible)
    if before:
        query = query.where(col(AuditEntry.id) < int(before))
    rows = list(db().exec(query.order_by(col(AuditEntry.id).desc()).limit(PAGE_SIZE + 1)).all())
    older = rows[PAGE_SIZE - 1][0].id if len(rows) > PAGE_SIZE else None
    return {"rows": rows[:PAGE_SIZE], "older": older, "before": before or None}


@bp.get("/audit")
@sign_in_required
def audit_log():
    return render_template("dashboard/audit.html", **_context())


@bp.get("/audit/live")
@sign_in_required
def audit_live():
    return render_template("dashboard/_audit_live.html", **_context())
