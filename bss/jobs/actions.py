"""What an operator does to jobs: retry and cancel, one job or a filter's whole set.

Each change is a conditional UPDATE (a worker or another operator may act at the same moment),
puts a line on the job's timeline, and writes the audit log in the same transaction. Messages
for retried jobs are sent only after commit, like a new job's.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import Session, col

from bss.accounts import audit
from bss.db import again_on_conflict
from bss.errors import InvalidState
from bss.jobs.search import JobSearch, job_batches
from bss.models import Job, JobSecret, JobState, add_event, utcnow

log = logging.getLogger(__name__)

Sender = Callable[[str], None]

# A retry puts the job back in the queue with a fresh attempt budget (the attempts so far stay
# on its timeline), and resumes after its last checkpoint.
RETRYABLE = (JobState.FAILED, JobState.CANCELLED, JobState.WAITING_REAUTH)
# A running job belongs to its worker until it ends; everything not yet started can be cancelled.
CANCELLABLE = (
    JobState.QUEUED,
    JobState.WAITING,
    JobState.WAITING_QUOTA,
    JobState.RETRYING,
    JobState.WAITING_REAUTH,
)


@dataclass(frozen=True)
class Actor:
    """Who acts, and from where (for the audit log and the job's timeline)."""

    name: str
    source_ip: str | None = None


@dataclass(frozen=True)
class BulkOutcome:
    """What a bulk action did: jobs changed, and jobs of the set that had moved on meanwhile."""

    changed: int
    skipped: int


def _retry_rows(session: Session, ids: Sequence[str]) -> list[tuple[str, int]]:
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(col(Job.id).in_(list(ids)), col(Job.state).in_(list(RETRYABLE)))
        .values(
            state=JobState.QUEUED,
            attempts=0,
            error=None,
            result=None,
            next_attempt_at=None,
            lease_owner=None,
            lease_expires_at=None,
            finished_at=None,
            updated_at=now,
        )
        .returning(col(Job.id), col(Job.distributor_id))
    )
    return [(job_id, distributor_id) for job_id, distributor_id in result.all()]


def _cancel_rows(session: Session, ids: Sequence[str]) -> list[tuple[str, int]]:
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(col(Job.id).in_(list(ids)), col(Job.state).in_(list(CANCELLABLE)))
        .values(
            state=JobState.CANCELLED,
            next_attempt_at=None,
            finished_at=now,
            updated_at=now,
        )
        .returning(col(Job.id), col(Job.distributor_id))
    )
    rows = [(job_id, distributor_id) for job_id, distributor_id in result.all()]
    if rows:
        # A cancelled job never runs again with what billing gave it.
        session.execute(delete(JobSecret).where(col(JobSecret.job_id).in_([r[0] for r in rows])))
    return rows


def _send_all(session: Session, ids: Sequence[str], send: Sender) -> None:
    """Send each retried job's message (after commit) and note when."""
    sent = []
    for job_id in ids:
        try:
            send(job_id)
        except Exception:  # the broker is away: the job is queued, the scheduler re-sends it
            log.warning("job %s queued again but not sent; the sweep will send it", job_id)
            continue
        sent.append(job_id)
    if sent:
        session.execute(update(Job).where(col(Job.id).in_(sent)).values(enqueued_at=utcnow()))
        session.commit()


def _note_one(
    session: Session,
    job: Job,
    *,
    actor: Actor,
    previous: str,
    what: str,
    state: JobState,
    action: str,
) -> None:
    """The job's timeline and the audit log, in the caller's transaction."""
    add_event(session, job.id, "state", what, state=state, previous=previous, by=actor.name)
    audit.record(
        session,
        actor=actor.name,
        action=action,
        target=job.id,
        distributor_id=job.distributor_id,
        source_ip=actor.source_ip,
        previous_state=previous,
    )


def retry_job(session: Session, job: Job, *, actor: Actor, send: Sender) -> Job:
    """Queue a failed, cancelled or waiting job again with a fresh attempt budget; commits, then
    sends."""
    previous = job.state
    if not _retry_rows(session, [job.id]):
        session.refresh(job)
        raise InvalidState(
            f"Job {job.id} is {job.state}; only a failed, cancelled or waiting job can be retried."
        )
    _note_one(
        session,
        job,
        actor=actor,
        previous=previous,
        state=JobState.QUEUED,
        what=f"Retried by {actor.name}: queued again",
        action="job.retry",
    )
    session.commit()
    _send_all(session, [job.id], send)
    session.refresh(job)
    return job


def cancel_job(session: Session, job: Job, *, actor: Actor) -> Job:
    """Cancel a job no worker is running (queued, retrying or waiting); commits."""
    previous = job.state
    if not _cancel_rows(session, [job.id]):
        session.refresh(job)
        raise InvalidState(
            f"Job {job.id} is {job.state}; only a queued, retrying or waiting job can be cancelled."
        )
    _note_one(
        session,
        job,
        actor=actor,
        previous=previous,
        state=JobState.CANCELLED,
        what=f"Cancelled by {actor.name}",
        action="job.cancel",
    )
    session.commit()
    session.refresh(job)
    return job


def _bulk(
    session: Session,
    *,
    scope: int | None,
    search: JobSearch,
    as_of: datetime,
    actor: Actor,
    action: str,
    states: Sequence[str],
    act: Callable[[Session, Sequence[str]], list[tuple[str, int]]],
    message: str,
    new_state: str,
    send: Sender | None,
    batch_size: int,
) -> BulkOutcome:
    # Only jobs that existed when the operator confirmed: the count they saw is the set acted on.
    bounded = search.model_copy(
        update={"created_before": min(filter(None, [search.created_before, as_of]))}
    )
    changed = skipped = 0
    per_distributor: Counter[int] = Counter()
    for batch in job_batches(session, scope=scope, search=bounded, states=states, size=batch_size):
        ids = [j.id for j in batch]
        previous = {j.id: j.state for j in batch}

        def change(
            ids: list[str] = ids, previous: dict[str, str] = previous
        ) -> list[tuple[str, int]]:
            done = act(session, ids)
            for job_id, _distributor_id in done:
                add_event(
                    session,
                    job_id,
                    "state",
                    message.format(actor=actor.name),
                    state=new_state,
                    previous=previous[job_id],
                    by=actor.name,
                    bulk=True,
                )
            session.commit()
            return done

        # The batch's rows are locked in their own order, the workers' in theirs: a deadlock
        # on PostgreSQL rolls the batch back, and it is changed again (a job that moved
        # meanwhile is skipped by the state's condition).
        done = again_on_conflict(session, change)
        for _job_id, distributor_id in done:
            per_distributor[distributor_id] += 1
        if send is not None:
            _send_all(session, [job_id for job_id, _ in done], send)
        changed += len(done)
        skipped += len(ids) - len(done)
    filters = search.model_dump(mode="json", exclude_none=True)
    # One entry per distributor touched, so each distributor's own log shows what was done.
    for distributor_id, n in sorted(per_distributor.items()):
        audit.record(
            session,
            actor=actor.name,
            action=action,
            target=f"{n} job{'s' if n != 1 else ''}",
            distributor_id=distributor_id,
            source_ip=actor.source_ip,
            count=n,
            filters=filters,
        )
    if not per_distributor:
        audit.record(
            session,
            actor=actor.name,
            action=action,
            target="0 jobs",
            distributor_id=scope,
            source_ip=actor.source_ip,
            count=0,
            filters=filters,
        )
    session.commit()
    return BulkOutcome(changed=changed, skipped=skipped)


def bulk_retry(
    session: Session,
    *,
    scope: int | None,
    search: JobSearch,
    as_of: datetime,
    actor: Actor,
    send: Sender,
    batch_size: int = 500,
) -> BulkOutcome:
    """Retry every failed, cancelled or waiting job matching `search` (created before `as_of`),
    in batches: each batch committed, then its messages sent."""
    return _bulk(
        session,
        scope=scope,
        search=search,
        as_of=as_of,
        actor=actor,
        action="job.bulk_retry",
        states=RETRYABLE,
        act=_retry_rows,
        message="Retried by {actor} (bulk): queued again",
        new_state=JobState.QUEUED,
        send=send,
        batch_size=batch_size,
    )


def bulk_cancel(
    session: Session,
    *,
    scope: int | None,
    search: JobSearch,
    as_of: datetime,
    actor: Actor,
    batch_size: int = 500,
) -> BulkOutcome:
    """Cancel every queued, retrying or waiting job matching `search` (created before `as_of`)."""
    return _bulk(
        session,
        scope=scope,
        search=search,
        as_of=as_of,
        actor=actor,
        action="job.bulk_cancel",
        states=CANCELLABLE,
        act=_cancel_rows,
        message="Cancelled by {actor} (bulk)",
        new_state=JobState.CANCELLED,
        send=None,
        batch_size=batch_size,
    )


def actions_for(state: str) -> dict[str, Any]:
    """Which buttons a job in `state` has."""
    return {"retry": state in RETRYABLE, "cancel": state in CANCELLABLE}
