"""Job detail: the request, steps and checkpoints, attempts, Google calls, the error and its
hint, webhook deliveries; retry and cancel."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from sqlmodel import col, select

from bss import jobs
from bss.errors import InvalidState, ValidationFailed
from bss.models import Distributor, Instance, Job, JobEvent, WebhookDelivery
from bss.operations import get_operation
from web.dashboard.access import actor, job_or_404
from web.dashboard.common import redacted
from web.deps import db
from web.portal.access import sign_in_required

bp = Blueprint("dashboard_job", __name__, url_prefix="/dashboard")


def _steps(job: Job) -> list[dict[str, Any]]:
    """Every step of the job's operation, done (with its checkpoint) or still to do."""
    checkpoint = job.checkpoint or {}
    try:
        names = [name for name, _ in get_operation(job.operation).steps]
    except ValidationFailed:  # an operation since removed: show what was recorded
        names = []
    names += [n for n in checkpoint if n not in names]
    return [
        {"name": n, "done": n in checkpoint, "output": redacted(checkpoint.get(n))} for n in names
    ]


def _attempts(events: list[JobEvent]) -> list[dict[str, Any]]:
    """One line per attempt: who ran it, when, its Google calls and how it ended."""
    attempts: list[dict[str, Any]] = []
    for e in events:
        if e.kind == "state" and e.data.get("state") == "running" and "attempt" in e.data:
            attempts.append(
                {
                    "number": e.data["attempt"],
                    "at": e.at,
                    "message": e.message,
                    "calls": 0,
                    "outcome": None,
                }
            )
        elif attempts and e.kind == "google_call":
            attempts[-1]["calls"] += 1
        elif attempts and e.kind == "state" and attempts[-1]["outcome"] is None:
            attempts[-1]["outcome"] = e.message
    return attempts


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
    return {
        "job": job,
        "instance": session.get(Instance, job.instance_id),
        "distributor": session.get(Distributor, job.distributor_id),
        "request_params": redacted(job.params),
        "result": redacted(job.result),
        "error": redacted(job.error),
        "steps": _steps(job),
        "attempts": _attempts(events),
        "calls": [e for e in events if e.kind == "google_call"],
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
