"""The old plain jobs pages: they live on the operator dashboard now; old links still work."""

from __future__ import annotations

from flask import Blueprint, redirect, request, url_for

from web.portal.access import sign_in_required

bp = Blueprint("jobs_page", __name__)


@bp.get("/jobs")
@sign_in_required
def list_jobs():
    return redirect(url_for("dashboard_jobs.jobs", **request.args.to_dict()))


@bp.get("/jobs/<job_id>")
@sign_in_required
def show_job(job_id: str):
    return redirect(url_for("dashboard_job.job", job_id=job_id))
