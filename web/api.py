"""Billing API v1: submit jobs, read them back."""

from __future__ import annotations

from flask import current_app, g, url_for
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel

from bss import jobs
from bss.models import Instance, Job
from bss.schemas import ErrorResponse, IdempotencyHeader, JobCreate, JobPublic
from web.deps import api_distributor, db

bp = APIBlueprint(
    "api",
    __name__,
    url_prefix="/api/v1",
    abp_tags=[Tag(name="jobs", description="Provisioning jobs")],
    abp_security=[{"bearer": []}],
    abp_responses={401: ErrorResponse, 404: ErrorResponse, 422: ErrorResponse},
)


@bp.before_request
def _authenticate() -> None:
    # Before request validation: an unauthenticated caller learns nothing about the body.
    g.distributor = api_distributor()


class JobPath(BaseModel):
    job_id: str


def _public(job: Job) -> dict:
    instance = db().get(Instance, job.instance_id)
    url = url_for("api.get_job", job_id=job.id, _external=True)
    return JobPublic.of(job, instance_name=instance.name if instance else "", url=url).model_dump(
        mode="json"
    )


@bp.post("/jobs", responses={202: JobPublic, 200: JobPublic})
def create_job(body: JobCreate, header: IdempotencyHeader):
    """Submit a provisioning job. 202 when accepted; 200 when the Idempotency-Key replays one."""
    distributor = g.distributor
    session = db()
    job, created = jobs.submit_job(
        session,
        distributor=distributor,
        instance_name=body.instance,
        operation=body.operation,
        params=body.params,
        external_ref=body.external_ref,
        idempotency_key=header.idempotency_key,
    )
    session.commit()
    if created:
        jobs.dispatch(session, job, current_app.extensions["bss.send"])
    return (
        _public(job),
        202 if created else 200,
        {"Location": url_for("api.get_job", job_id=job.id)},
    )


@bp.get("/jobs/<job_id>", responses={200: JobPublic})
def get_job(path: JobPath):
    """A job's state, steps, attempts, result or error."""
    distributor = g.distributor
    job = jobs.get_job(db(), distributor_id=distributor.id, job_id=path.job_id)
    return _public(job)


@bp.post("/jobs/<job_id>/cancel", responses={200: JobPublic, 409: ErrorResponse})
def cancel_job(path: JobPath):
    """Cancel a job that is still queued."""
    distributor = g.distributor
    session = db()
    job = jobs.get_job(session, distributor_id=distributor.id, job_id=path.job_id)
    jobs.cancel_job(session, job)
    session.commit()
    return _public(job)
