"""Jobs, the unit of truth, and the events on their timeline."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from bss.models.base import new_id, utcnow


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    WAITING_REAUTH = "waiting_reauth"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class Job(SQLModel, table=True):
    """One provisioning request, from acceptance to its outcome."""

    __table_args__ = (
        UniqueConstraint("distributor_id", "idempotency_key"),
        Index("ix_job_distributor_created", "distributor_id", "created_at"),
        Index("ix_job_state_updated", "state", "updated_at"),
    )

    id: str = Field(default_factory=lambda: new_id("job"), primary_key=True, max_length=40)
    distributor_id: int = Field(foreign_key="distributor.id")
    instance_id: int = Field(foreign_key="instance.id", index=True)
    operation: str = Field(max_length=64)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    external_ref: str | None = Field(default=None, max_length=200)
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


class JobEvent(SQLModel, table=True):
    """A line on a job's timeline: a state change, a step, a Google call. Never a secret."""

    __tablename__ = "job_event"

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="job.id", index=True, max_length=40)
    at: datetime = Field(default_factory=utcnow)
    kind: str = Field(max_length=32)
    message: str = Field(default="")
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
