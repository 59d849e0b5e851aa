"""A plain jobs page (development only until the portal's sign-in guards it)."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from sqlmodel import select

from bss.models import Distributor, Instance, Job, JobEvent
from web.deps import db, settings

bp = Blueprint("jobs_page", __name__)


@bp.before_request
def _development_only() -> None:
    if settings().is_production:
        abort(404)


@bp.get("/jobs")
def list_jobs():
    session = db()
    rows = session.exec(
        select(Job, Instance, Distributor)
        .join(Instance, Instance.id == Job.instance_id)
        .join(Distributor, Distributor.id == Job.distributor_id)
        .order_by(Job.created_at.desc())  # type: ignore[attr-defined]
        .limit(200)
    ).all()
    return render_template("jobs.html", rows=rows)


@bp.get("/jobs/<job_id>")
def show_job(job_id: str):
    session = db()
    job = session.get(Job, job_id) or abort(404)
    events = session.exec(
        select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)  # type: ignore[arg-type]
    ).all()
    return render_template("job.html", job=job, events=events)
