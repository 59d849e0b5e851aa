"""Billing API v1, jobs: submit them, list and read them, read their timeline, cancel them."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request, url_for
from pydantic import BaseModel, Field
from sqlmodel import select

from bss import jobs
from bss.errors import NotFound
from bss.jobs import (
    ErrorResponse,
    IdempotencyHeader,
    JobCreate,
    JobEventPublic,
    JobList,
    JobListQuery,
    JobPublic,
    JobTimeline,
)
from bss.models import Instance, Job, JobEvent, iso
from web.api.blueprint import bp
from web.deps import db


class JobPath(BaseModel):
    job_id: str = Field(max_length=40)


def _instance_names(job_list: list[Job]) -> dict[int, str]:
    ids = {j.instance_id for j in job_list}
    if not ids:
        return {}
    rows = db().exec(select(Instance).where(Instance.id.in_(ids))).all()  # type: ignore[union-attr]
    return {i.id: i.name for i in rows if i.id is not None}


def _public(job: Job, names: dict[int, str] | None = None) -> dict[str, Any]:
    names = names if names is not None else _instance_names([job])
    url = url_for("api.get_job", job_id=job.id, _external=True)
    return JobPublic.of(job, instance_name=names.get(job.instance_id, ""), url=url).model_dump(
        mode="json"
    )


@bp.post(
    "/jobs",
    responses={
        202: JobPublic,
        200: JobPublic,
        400: ErrorResponse,
        413: ErrorResponse,
        415: ErrorResponse,
        503: ErrorResponse,
    },
)
def create_job(body: JobCreate, header: IdempotencyHeader):
    """Submit a provisioning job. 202 when accepted; 200 when the Idempotency-Key replays one.

    Once 202 is answered the job is recorded and will run, even when the queue is unreachable
    for a while (`notice` then says its start is delayed). 503 with Retry-After means nothing was
    recorded: send it again.

    `params` is validated against the operation's own model (GET /operations names it); every
    bad field is listed, and nothing is written or enqueued for a refused request.
    """
    settings = current_app.config["BSS_SETTINGS"]
    # Sent now, or held while the distributor has its share of the workers (wait_reason says so)
    accepted = jobs.accept_job(
        db(),
        settings,
        distributor_id=g.distributor.id,
        instance_name=body.instance,
        operation=body.operation,
        params=body.params,
        external_ref=body.external_ref,
        idempotency_key=header.idempotency_key,
        vault=current_app.extensions["bss.vault"],
        send=current_app.extensions["bss.send"],
    )
    job = accepted.job
    location = url_for("api.get_job", job_id=job.id)
    url = request.host_url.rstrip("/") + location  # as url_for(_external=True) says it
    # The instance is the one named (a replay's body is the first one's, instance included)
    answer = JobPublic.of(job, instance_name=body.instance, url=url).model_dump(mode="json")
    if accepted.broker_away:
        wait = round(settings.resend_after_seconds + settings.sweep_interval_seconds)
        answer["notice"] = (
            "Accepted and recorded, but the job queue is unreachable right now: the job will be "
            f"handed to a worker within about {wait} s of the queue answering again. "
            "Do not submit it again."
        )
    return (
        answer,
        202 if accepted.created else 200,
        {"Location": location},
    )


@bp.get("/jobs", responses={200: JobList})
def list_jobs(query: JobListQuery):
    """Your jobs, newest first, filtered; follow `next_cursor` for the next page."""
    distributor = g.distributor
    session = db()
    instance_id = None
    if query.instance:
        instance = session.exec(
            select(Instance).where(
                Instance.distributor_id == distributor.id, Instance.name == query.instance
            )
        ).first()
        if instance is None:
            raise NotFound(
                f"No instance named {query.instance!r}.",
                details=[{"field": "instance", "problem": "no such instance"}],
            )
        instance_id = instance.id
    filters = jobs.JobFilters(
        state=query.state,
        operation=query.operation,
        instance_id=instance_id,
        external_ref=query.external_ref,
        created_after=query.created_after,
        created_before=query.created_before,
    )
    page, following = jobs.list_jobs(
        session,
        distributor_id=distributor.id,
        filters=filters,
        limit=query.limit,
        cursor=query.cursor,
    )
    names = _instance_names(page)
    return {"jobs": [_public(j, names) for j in page], "next_cursor": following}


@bp.get("/jobs/<job_id>", responses={200: JobPublic})
def get_job(path: JobPath):
    """A job's state, steps, attempts, next attempt, result or error.

    A password generated for the customer's admin (when no welcome email delivered it) is in
    `result.admin_password` on the first read after success only; it is then wiped.
    """
    distributor = g.distributor
    session = db()
    job = jobs.get_job(session, distributor_id=distributor.id, job_id=path.job_id)
    shown = jobs.reveal_secrets(session, job, current_app.extensions["bss.vault"])
    body = _public(job)
    if shown:
        session.commit()
        body["result"] = {**(body["result"] or {}), **shown}
    return body


@bp.get("/jobs/<job_id>/timeline", responses={200: JobTimeline})
def job_timeline(path: JobPath):
    """Everything that happened to a job, oldest first: states, steps, every Google call
    (method, HTTP status, Google's reason, duration) and every webhook delivery attempt."""
    distributor = g.distributor
    session = db()
    job = jobs.get_job(session, distributor_id=distributor.id, job_id=path.job_id)
    rows = session.exec(
        select(JobEvent).where(JobEvent.job_id == job.id).order_by(JobEvent.id)  # type: ignore[arg-type]
    ).all()
    events = [
        JobEventPublic(at=iso(e.at), kind=e.kind, message=e.message, data=e.data).model_dump()
        for e in rows
    ]
    return {"job_id": job.id, "events": events}


@bp.post("/jobs/<job_id>/cancel", responses={200: JobPublic, 409: ErrorResponse})
def cancel_job(path: JobPath):
    """Cancel a job that is still queued (409 once a worker has started it)."""
    distributor = g.distributor
    session = db()
    job = jobs.get_job(session, distributor_id=distributor.id, job_id=path.job_id)
    jobs.cancel_queued_job(session, job)
    session.commit()
    return _public(job)
