"""Instances: health per instance (as the portal shows it), last error, jobs waiting on it."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from sqlmodel import col, select

from bss.accounts import ALL
from bss.models import Distributor, Instance, InstanceStatus
from bss.monitoring import waiting_by_instance
from web.dashboard.access import scope
from web.deps import db
from web.portal.access import sign_in_required
from web.portal.instances import health_of

bp = Blueprint("dashboard_instances", __name__, url_prefix="/dashboard")

# Worst first: what needs someone's attention comes to the top.
ORDER = {
    InstanceStatus.NEEDS_REAUTH: 0,
    InstanceStatus.NOT_AUTHENTICATED: 1,
    InstanceStatus.DISABLED: 2,
    InstanceStatus.AUTHENTICATED: 3,
}


def _context() -> dict[str, Any]:
    visible = scope()
    query = select(Instance, Distributor).join(
        Distributor, col(Distributor.id) == col(Instance.distributor_id)
    )
    if visible is not ALL:
        query = query.where(col(Instance.distributor_id) == visible)
    waiting = waiting_by_instance(db(), scope=visible)
    rows = [
        {
            "instance": instance,
            "distributor": distributor,
            "health": health_of(instance),
            "waiting": waiting.get(instance.id or 0, {}),
        }
        for instance, distributor in db().exec(query).all()
    ]
    rows.sort(
        key=lambda r: (
            ORDER.get(r["instance"].status, 9),
            -sum(r["waiting"].values()),
            r["distributor"].name,
            r["instance"].name,
        )
    )
    return {"rows": rows}


@bp.get("/instances")
@sign_in_required
def instances():
    return render_template("dashboard/instances.html", **_context())


@bp.get("/instances/live")
@sign_in_required
def instances_live():
    return render_template("dashboard/_instances_live.html", **_context())
