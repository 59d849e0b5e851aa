"""Jobs on one customer run one at a time, in the order they were accepted.

A job's ordering key is its instance and the customer its params name (`Job.customer_domain`:
the domain, or the Google id as given). Before a worker leases a job, it looks for a job with
the same key that must go first: an earlier one not finished yet (queued, waiting, running,
retrying, or parked on its instance), or any one running now. If there is one, the job waits
(`waiting`, `waiting_for` that job) without spending an attempt; when that job ends (succeeded,
failed or cancelled) the jobs waiting for it are sent again and look again. The sweep sends any
whose blocker has ended meanwhile, so a lost message only delays them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased
from sqlmodel import Session, col
from sqlmodel import select as orm_select

from bss.jobs.rows import BLOCKER, FINAL, WAITING_FOR
from bss.models import Job, JobState, add_event, utcnow

__all__ = ["FINAL", "blocker", "unblocked", "wait_behind", "waiting_for"]


def blocker(session: Session, job: Any) -> str | None:
    """The id of the job that must go before `job` (a Job, or a row with its id, instance_id,
    customer_domain and created_at), or None when it may run now."""
    if not job.customer_domain:
        return None
    params = {
        "job_id": job.id,
        "instance_id": job.instance_id,
        "domain": job.customer_domain,
        "created_at": job.created_at,
    }
    return session.execute(BLOCKER, params).scalar()


def wait_behind(session: Session, job: Job, first: Job) -> None:
    """Park `job` behind `first` (no attempt spent); said once on its timeline."""
    if job.state == JobState.WAITING and job.waiting_for == first.id:
        return
    job.state, job.waiting_for = JobState.WAITING, first.id
    job.updated_at = job.enqueued_at = utcnow()
    job.next_attempt_at = None
    session.add(job)
    add_event(
        session,
        job.id,
        "state",
        f"Waiting for job {first.id} ({first.operation}, {first.state}) on the same customer",
        state=JobState.WAITING,
        waiting_for=first.id,
    )


def waiting_for(session: Session | Connection, job_id: str) -> list[str]:
    """Jobs waiting for `job_id`: to send again once it has ended, so that they look again."""
    return list(session.execute(WAITING_FOR, {"job_id": job_id}).scalars())


def unblocked(session: Session, limit: int = 500) -> list[Job]:
    """Waiting jobs whose blocker has ended (or is gone): for the sweep to send again."""
    first = aliased(Job)
    ongoing = (
        orm_select(first.id)
        .where(col(first.id) == col(Job.waiting_for), col(first.state).not_in(list(FINAL)))
        .exists()
    )
    return list(
        session.exec(
            orm_select(Job).where(Job.state == JobState.WAITING, ~ongoing).limit(limit)
        ).all()
    )
