"""Google's notifications: every instance's notification state (not registered, failing, silent,
receiving) and the latest notifications of each instance, with Google's raw payload."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from sqlmodel import col, select
from werkzeug.exceptions import NotFound

from bss.accounts import ALL
from bss.errors import ValidationFailed
from bss.models import Distributor, GoogleEvent, Instance
from web.dashboard.access import scope
from web.dashboard.common import redacted
from web.deps import db
from web.portal.access import sign_in_required
from web.portal.instance_events import ORDER, notification_state

bp = Blueprint("dashboard_events", __name__, url_prefix="/dashboard")

PER_INSTANCE = 10  # the latest notifications of each instance on the overview
ONE_INSTANCE = 100  # ... and when the page shows one instance


def _instances(visible: int | None, instance_id: int | None) -> list[tuple[Instance, Distributor]]:
    query = select(Instance, Distributor).join(
        Distributor, col(Distributor.id) == col(Instance.distributor_id)
    )
    if visible is not ALL:
        query = query.where(col(Instance.distributor_id) == visible)
    if instance_id is not None:
        query = query.where(col(Instance.id) == instance_id)
    return [(i, d) for i, d in db().exec(query).all()]


def _instance_filter(visible: int | None) -> int | None:
    raw = (request.args.get("instance") or "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ValidationFailed(
            "The filter 'instance' is invalid: expected a number.",
            details=[{"field": "instance", "problem": "expected a number"}],
        )
    instance = db().get(Instance, int(raw))
    if instance is None or (visible is not ALL and instance.distributor_id != visible):
        raise NotFound("No such instance.")
    return instance.id


def _latest(instance_id: int, limit: int) -> list[dict[str, Any]]:
    rows = (
        db()
        .exec(
            select(GoogleEvent)
            .where(col(GoogleEvent.instance_id) == instance_id)
            .order_by(col(GoogleEvent.received_at).desc(), col(GoogleEvent.id).desc())
            .limit(limit)
        )
        .all()
    )
    return [
        {"event": e, "payload": redacted(e.payload), "attributes": redacted(e.attributes)}
        for e in rows
    ]


def _context() -> dict[str, Any]:
    visible = scope()
    instance_id = _instance_filter(visible)
    limit = ONE_INSTANCE if instance_id is not None else PER_INSTANCE
    rows = []
    for instance, distributor in _instances(visible, instance_id):
        state = notification_state(instance)
        rows.append(
            {
                "instance": instance,
                "distributor": distributor,
                "notifications": state,
                "events": _latest(instance.id or 0, limit),
            }
        )
    rows.sort(
        key=lambda r: (
            ORDER.get(r["notifications"].state, 9),
            r["distributor"].name,
            r["instance"].name,
        )
    )
    attention = [r for r in rows if r["notifications"].state in ("failing", "silent", "off")]
    # Instances with an event are listed with their events; the others only in the states table
    return {
        "rows": rows,
        "with_events": [r for r in rows if r["events"]],
        "attention": len(attention),
        "instance_id": instance_id,
        "choices": sorted(_instances(visible, None), key=lambda pair: (pair[1].name, pair[0].name)),
    }


@bp.get("/events")
@sign_in_required
def events():
    return render_template("dashboard/events.html", **_context())


@bp.get("/events/live")
@sign_in_required
def events_live():
    return render_template("dashboard/_events_live.html", **_context())
