"""Jobs, the unit of truth, and the events on their timeline."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, event, text
from sqlmodel import Field, Session, SQLModel

from bss.models.base import new_id, utcnow


class JobState(StrEnum):
    QUEUED = "queued"
    # Behind an earlier job on the same customer of the same instance (`waiting_for`)
    WAITING = "waiting"
    # Its Google API's quota for the instance's Cloud project is spent for now: it resumes at
    # `next_attempt_at` without spending an attempt (`wait_reason` says which quota)
    WAITING_QUOTA = "waiting_quota"
    RUNNING = "running"
    RETRYING = "retrying"
    WAITING_REAUTH = "waiting_reauth"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


# A distributor's jobs in flight (running, waiting for quota, or queued and sent to the
# workers), as SQL: the condition of a partial index, so that counting them (at every order and
# every release) reads what the distributor's share holds, not its held backlog. Written with
# its states as literals: a planner matches a partial index's condition only against literals
# in the query (bss.jobs.rows.Load renders it the same way).
IN_FLIGHT_SQL = (
    "state IN ('running', 'waiting_quota') OR (state = 'queued' AND enqueued_at IS NOT NULL)"
)


def _partial(name: str, condition: str, *columns: str) -> Index:
    where = text(condition)
    return Index(name, *columns, sqlite_where=where, postgresql_where=where)


class Job(SQLModel, table=True):
    """One provisioning request, from acceptance to its outcome."""

    __table_args__ = (
        UniqueConstraint("distributor_id", "idempotency_key"),
        Index("ix_job_distributor_created", "distributor_id", "created_at"),
        Index("ix_job_state_updated", "state", "updated_at"),
        # The dashboard's listing: each filter, then newest first (keyset on created_at, id).
        Index("ix_job_created", "created_at", "id"),
        Index("ix_job_state_created", "state", "created_at", "id"),
        Index("ix_job_instance_created", "instance_id", "created_at", "id"),
        Index("ix_job_operation_created", "operation", "created_at", "id"),
        Index("ix_job_domain_created", "customer_domain", "created_at", "id"),
        # The job to wait for on the same customer, read at every lease and order (bss.jobs.
        # ordering): the customer's own jobs, not every job of its instance.
        Index("ix_job_customer_line", "instance_id", "customer_domain", "created_at", "id"),
        Index("ix_job_external_ref", "external_ref"),
        Index("ix_job_idempotency_key", "idempotency_key"),
        Index("ix_job_finished", "finished_at"),
        # Jobs waiting per instance; an instance's jobs of some states, newest first (bulk).
        Index("ix_job_state_instance_created", "state", "instance_id", "created_at", "id"),
        Index("ix_job_distributor_state", "distributor_id", "state", "created_at", "id"),
        # The charts' jobs finished in a window (read from the index alone).
        Index("ix_job_state_finished", "state", "finished_at", "distributor_id"),
        # A bulk action's jobs of some states and one operation; /metrics' jobs by both.
        Index("ix_job_state_operation", "state", "operation", "created_at", "id"),
        # A distributor's jobs in flight (see IN_FLIGHT_SQL).
        _partial("ix_job_in_flight", IN_FLIGHT_SQL, "distributor_id"),
    )

    id: str = Field(default_factory=lambda: new_id("job"), primary_key=True, max_length=40)
    distributor_id: int = Field(foreign_key="distributor.id")
    instance_id: int = Field(foreign_key="instance.id", index=True)
    operation: str = Field(max_length=64)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    external_ref: str | None = Field(default=None, max_length=200)
    # The customer the job is about, from its params (filled on insert), for filtering.
    customer_domain: str | None = Field(default=None, max_length=253)
    idempotency_key: str | None = Field(default=None, max_length=200)
    request_hash: str = Field(max_length=64)
    state: str = Field(default=JobState.QUEUED, max_length=32)
    attempts: int = 0
    next_attempt_at: datetime | None = None
    lease_owner: str | None = Field(default=None, max_length=200)
    lease_expires_at: datetime | None = None
    # Outputs of finished steps, keyed by step name: a retry resumes after the last one.
    checkpoint: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    enqueued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # The earlier job on the same customer this one waits for (state `waiting`)
    waiting_for: str | None = Field(default=None, max_length=40)
    # Why a job that is not running waits, in words (an earlier job, a quota, its distributor's
    # share of the workers); None once it runs
    wait_reason: str | None = Field(default=None, max_length=300)
    # A long job's progress, saved with each chunk: {"done": 412, "total": 1000, "unit": "users"}
    progress: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


def customer_domain_of(params: dict[str, Any]) -> str | None:
    """The customer's domain (or Google id) named by a job's params, lower-cased: jobs of one
    instance with the same one run one at a time, in the order they were accepted."""
    found = params.get("domain") or params.get("customer")
    if isinstance(found, dict):
        found = found.get("domain")
    email = params.get("primary_email")
    if found is None and isinstance(email, str) and "@" in email:
        found = email.rsplit("@", 1)[1]  # a user of the customer's domain
    return found.strip().lower()[:253] if isinstance(found, str) and found.strip() else None


@event.listens_for(Job, "before_insert")
def _fill_customer_domain(_mapper: Any, _conn: Any, job: Job) -> None:
    if job.customer_domain is None and isinstance(job.params, dict):
        job.customer_domain = customer_domain_of(job.params)


class JobEvent(SQLModel, table=True):
    """A line on a job's timeline: a state change, a step, a Google call. Never a secret."""

    __tablename__ = "job_event"

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="job.id", index=True, max_length=40)
    at: datetime = Field(default_factory=utcnow)
    kind: str = Field(max_length=32)
    message: str = Field(default="")
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


def add_event(session: Session, job_id: str, kind: str, message: str, **data: Any) -> JobEvent:
    """Put a line on a job's timeline (every wing that acts on a job may write one)."""
    event = JobEvent(job_id=job_id, kind=kind, message=message, data=data)
    session.add(event)
    return event
