"""Drift: where Google holds something other than what billing ordered, with both values and the
job that set billing's; Accept (Google's value becomes the order) or Restore (a job puts billing's
value back), each on the audit log."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from sqlmodel import col, select
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import NotFound

from bss import events, jobs
from bss.accounts import ALL
from bss.errors import BssError, ValidationFailed
from bss.models import Distributor, Drift, Instance, Job
from web.dashboard.access import actor, scope, sees
from web.deps import db, settings
from web.portal.access import audit_action, require_user, sign_in_required

bp = Blueprint("dashboard_drift", __name__, url_prefix="/dashboard")

PAGE_SIZE = 50
FILTER_KEYS = ("state", "instance", "field", "customer")
FIELDS = ("seats", "plan", "renewal", "status", "customer", "exists")
STATES = ("open", "resolved")
ACTIONS = {
    "accept": "accepted: Google's value is now what billing ordered",
    "restore": "restored: a job puts billing's value back at Google",
}


def _invalid(field: str, problem: str) -> ValidationFailed:
    return ValidationFailed(
        f"The filter {field!r} is invalid: {problem}.",
        details=[{"field": field, "problem": problem}],
    )


def filters_of(args: MultiDict, visible: int | None) -> dict[str, Any]:
    """The page's filter, checked: unknown values refused, another distributor's instance 404."""
    state = (args.get("state") or "open").strip()
    if state not in STATES:
        raise _invalid("state", "use open or resolved")
    field = (args.get("field") or "").strip() or None
    if field and field not in FIELDS:
        raise _invalid("field", f"use one of {', '.join(FIELDS)}")
    instance_id = None
    raw = (args.get("instance") or "").strip()
    if raw:
        if not raw.isdigit():
            raise _invalid("instance", "expected a number")
        instance = db().get(Instance, int(raw))
        if instance is None or (visible is not ALL and instance.distributor_id != visible):
            raise NotFound("No such instance.")
        instance_id = instance.id
    customer = (args.get("customer") or "").strip().lower() or None
    return {"state": state, "field": field, "instance_id": instance_id, "customer": customer}


def _context() -> dict[str, Any]:
    visible = scope()
    chosen = filters_of(request.args, visible)
    cursor = request.args.get("cursor") or None
    rows, following = events.list_drift(
        db(), distributor_id=visible, limit=PAGE_SIZE, cursor=cursor, **chosen
    )
    rows = list(rows)
    query = select(Instance, Distributor).join(
        Distributor, col(Distributor.id) == col(Instance.distributor_id)
    )
    if visible is not ALL:
        query = query.where(col(Instance.distributor_id) == visible)
    instances = db().exec(query).all()
    names = {i.id: (i.name, d.name) for i, d in instances}
    job_ids = {r.desired_job_id for r in rows if r.desired_job_id}
    job_ids |= {r.resolution_job_id for r in rows if r.resolution_job_id}
    known_jobs = (
        {j.id for j in db().exec(select(Job).where(col(Job.id).in_(job_ids))).all()}
        if job_ids
        else set()
    )
    return {
        "rows": rows,
        "names": names,
        "known_jobs": known_jobs,
        "next_cursor": following,
        "filters": {k: request.args[k].strip() for k in FILTER_KEYS if request.args.get(k)},
        "chosen": chosen,
        "choices": sorted(instances, key=lambda pair: (pair[1].name, pair[0].name)),
        "fields": FIELDS,
        "states": STATES,
    }


@bp.get("/drift")
@sign_in_required
def drift():
    return render_template("dashboard/drift.html", **_context())


@bp.get("/drift/live")
@sign_in_required
def drift_live():
    return render_template("dashboard/_drift_live.html", **_context())


@bp.post("/drift/<drift_id>/resolve")
@sign_in_required
def resolve(drift_id: str):
    """Accept Google's value, or restore billing's with a job; on the audit log either way."""
    who = actor()  # viewers are refused before anything is looked up
    row = db().get(Drift, drift_id)
    if row is None or not sees(require_user(), row.distributor_id):
        raise NotFound(f"No drift {drift_id!r}.")
    action = (request.form.get("action") or "").strip()
    back = redirect(url_for("dashboard_drift.drift", **_carried(request.form)))
    if action not in ACTIONS:
        flash("Choose Accept or Restore.", "error")
        return back
    session = db()
    try:
        resolved, job_id = events.resolve_drift(
            session,
            settings(),
            drift_id,
            distributor_id=scope(),
            action=action,
            actor=who.name,
        )
    except BssError as exc:
        session.rollback()
        flash(f"Not resolved: {exc.message}", "error")
        return back
    audit_action(
        f"drift.{action}",
        distributor_id=resolved.distributor_id,
        target=f"drift {resolved.id}",
        customer=resolved.customer_domain or resolved.customer_id,
        sku_id=resolved.sku_id,
        field=resolved.field,
        desired=resolved.desired,
        actual=resolved.actual,
        job_id=job_id,
    )
    session.commit()
    if job_id:
        job = session.get(Job, job_id)
        if job is not None:
            jobs.dispatch(session, job, current_app.extensions["bss.send"], settings=settings())
    where = resolved.customer_domain or resolved.customer_id
    message = f"The {resolved.field} difference of {where} is {ACTIONS[action]}"
    flash(message + (f" (job {job_id})." if job_id else "."), "ok")
    return back


def _carried(form: MultiDict) -> dict[str, str]:
    return {k: form[k].strip() for k in FILTER_KEYS if (form.get(k) or "").strip()}
