"""Accepting jobs: validate, write the row, and only after commit send the message."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bss.errors import IdempotencyConflict, InvalidState, NotFound, ValidationFailed
from bss.models import Distributor, Instance, Job, JobEvent, JobState, utcnow
from bss.operations import get_operation

Sender = Callable[[str], None]


def request_hash(body: dict[str, Any]) -> str:
    """A stable digest of a request body, to tell a replay from a different request."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def add_event(session: Session, job_id: str, kind: str, message: str, **data: Any) -> JobEvent:
    """Put a line on a job's timeline."""
    event = JobEvent(job_id=job_id, kind=kind, message=message, data=data)
    session.add(event)
    return event


def submit_job(
    session: Session,
    *,
    distributor: Distributor,
    instance_name: str,
    operation: str,
    params: dict[str, Any],
    external_ref: str | None = None,
    idempotency_key: str | None = None,
) -> tuple[Job, bool]:
    """Validate and record a job (state queued). Returns (job, created).

    The same Idempotency-Key with the same body returns the first job; with another body it is
    refused. The caller commits, then sends the message (`dispatch`).
    """
    body = {
        "instance": instance_name,
        "operation": operation,
        "params": params,
        "external_ref": external_ref,
    }
    digest = request_hash(body)
    if idempotency_key:
        existing = _by_idempotency_key(session, distributor.id, idempotency_key)
        if existing is not None:
            return _replay(existing, digest), False
    op = get_operation(operation)
    validated = op.validate(params)
    instance = session.exec(
        select(Instance).where(
            Instance.distributor_id == distributor.id, Instance.name == instance_name
        )
    ).first()
    if instance is None:
        raise NotFound(
            f"No instance named {instance_name!r}.",
            details=[{"field": "instance", "problem": "no such instance"}],
        )
    job = Job(
        distributor_id=distributor.id,  # type: ignore[arg-type]
        instance_id=instance.id,  # type: ignore[arg-type]
        operation=op.name,
        params=validated.model_dump(mode="json", exclude_none=True),
        external_ref=external_ref,
        idempotency_key=idempotency_key,
        request_hash=digest,
    )
    session.add(job)
    try:
        session.flush()
    except IntegrityError:
        # Another request with the same key won the race: answer as its replay.
        session.rollback()
        existing = _by_idempotency_key(session, distributor.id, idempotency_key or "")
        if existing is None:
            raise
        return _replay(existing, digest), False
    add_event(session, job.id, "state", "Accepted", state=JobState.QUEUED)
    return job, True


def _by_idempotency_key(session: Session, distributor_id: int | None, key: str) -> Job | None:
    return session.exec(
        select(Job).where(Job.distributor_id == distributor_id, Job.idempotency_key == key)
    ).first()


def _replay(existing: Job, digest: str) -> Job:
    if existing.request_hash != digest:
        raise IdempotencyConflict(
            "This Idempotency-Key was already used with a different request body "
            f"(job {existing.id}). Use a new key for a new request.",
            details=[{"field": "Idempotency-Key", "problem": "reused with a different body"}],
        )
    return existing


def dispatch(session: Session, job: Job, send: Sender) -> None:
    """Send the job's message (after its row is committed) and note when."""
    send(job.id)
    job.enqueued_at = utcnow()
    session.add(job)
    session.commit()


def get_job(session: Session, *, distributor_id: int | None, job_id: str) -> Job:
    """A job of this distributor (None: any distributor, for operators), or NotFound."""
    job = session.get(Job, job_id)
    if job is None or (distributor_id is not None and job.distributor_id != distributor_id):
        raise NotFound(f"No job {job_id!r}.")
    return job


def cancel_job(session: Session, job: Job) -> Job:
    """Cancel a job that no worker has started (a conditional update: a worker may race us)."""
    now = utcnow()
    done = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.state == JobState.QUEUED)  # type: ignore[arg-type]
        .values(state=JobState.CANCELLED, finished_at=now, updated_at=now)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(job)
        raise InvalidState(f"Job {job.id} is {job.state}; only a queued job can be cancelled.")
    add_event(session, job.id, "state", "Cancelled", state=JobState.CANCELLED)
    session.flush()
    session.refresh(job)
    return job


__all__ = [
    "ValidationFailed",
    "add_event",
    "cancel_job",
    "dispatch",
    "get_job",
    "request_hash",
    "submit_job",
]
