"""Job detail: the state, error, result and steps on top; the attempts (numbered across retries),
webhook deliveries; the request, Google calls and raw timeline folded away; retry and cancel."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from sqlmodel import col, select

from bss import jobs
from bss.errors import InvalidState, ValidationFailed
from bss.models import Distributor, Instance, Job, JobEvent, WebhookDelivery
from bss.operations import PARTIAL_KEY, get_operation
from web.dashboard.access import actor, job_or_404
from web.dashboard.attempts import attempt_rows, google_calls
from web.dashboard.common import redacted
from web.deps import db
from web.portal.access import sign_in_required

bp = Blueprint("dashboard_job", __name__, url_prefix="/dashboard")
# A step's one-line summary stops here; the whole checkpoint is one click away.
GIST_WIDTH = 160


def _steps(job: Job) -> list[dict[str, Any]]:
    """Every step of the job's operation, done (with its checkpoint) or still to do."""
    checkpoint = job.checkpoint or {}
    try:
        names = [name for name, _ in get_operation(job.operation).steps]
    except ValidationFailed:  # an operation since removed: show what was recorded
        names = []
    # (the partial state of a long step is not a step: its progress shows above)
    names += [n for n in checkpoint if n not in names and n != PARTIAL_KEY]
    shown = {n: redacted(out) for n, out in checkpoint.items()}
    return [
        {"name": n, "done": n in shown, "output": shown.get(n), "gist": _gist(shown.get(n))}
        for n in names
    ]


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return f"{len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return "{…}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "—" if value is None else str(value)


def _gist(output: Any) -> str:
    """A step's checkpoint in one line: its plain values, and how many items its lists hold."""
    if isinstance(output, dict):
        text = " · ".join(f"{k}: {_plain(v)}" for k, v in output.items())
    else:
        text = "" if output is None else _plain(output)
    return text if len(text) <= GIST_WIDTH else text[: GIST_WIDTH - 1] + "…"


def _context(job: Job) -> dict[str, Any]:
    session = db()
    events = list(
        session.exec(select(JobEvent).where(JobEvent.job_id == job.id).order_by(col(JobEvent.id)))
    )
    deliveries = list(
        session.exec(
            select(WebhookDelivery)
            .where(WebhookDelivery.job_id == job.id)
            .order_by(col(WebhookDelivery.created_at))
        )
    )
    attempts = attempt_rows(events)
    return {
        "job": job,
        "instance": session.get(Instance, job.instance_id),
        "distributor": session.get(Distributor, job.distributor_id),
        "request_params": redacted(job.params),
        "result": redacted(job.result),
        "error": redacted(job.error),
        "steps": _steps(job),
        "attempts": attempts,
        "attempt_count": sum(1 for a in attempts if a["kind"] == "attempt"),
        "retried": any(a.get("retry") for a in attempts),
        "calls": google_calls(events),
        "events": [
            {"at": e.at, "kind": e.kind, "message": e.message, "data": redacted(e.data)}
            for e in events
        ],
        "deliveries": deliveries,
        "can": jobs.actions_for(job.state),
    }


@bp.get("/jobs/<job_id>")
@sign_in_required
def job(job_id: str):
    found = job_or_404(job_id)
    return render_template("dashboard/job.html", **_context(found))


@bp.get("/jobs/<job_id>/live")
@sign_in_required
def job_live(job_id: str):
    found = job_or_404(job_id)
    return render_template("dashboard/_job_live.html", **_context(found))


@bp.post("/jobs/<job_id>/retry")
@sign_in_required
def retry(job_id: str):
    found = job_or_404(job_id)
    who = actor()
    try:
        jobs.retry_job(db(), found, actor=who, send=current_app.extensions["bss.send"])
        flash("Queued again.", "ok")
    except InvalidState as exc:
        db().rollback()
        flash(exc.message, "error")
    return redirect(url_for("dashboard_job.job", job_id=job_id))


@bp.post("/jobs/<job_id>/cancel")
@sign_in_required
def cancel(job_id: str):
    found = job_or_404(job_id)
    who = actor()
    try:
        jobs.cancel_job(db(), found, actor=who)
        flash("Cancelled.", "ok")
    except InvalidState as exc:
        db().rollback()
        flash(exc.message, "error")
    return redirect(url_for("dashboard_job.job", job_id=job_id))
