"""Public shapes of what the billing API accepts and returns (also its OpenAPI document)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bss.models import Job
from bss.models.base import iso


class JobCreate(BaseModel):
    """A provisioning request."""

    model_config = ConfigDict(extra="forbid")

    instance: str = Field(min_length=1, max_length=100, description="The instance's System Name")
    operation: str = Field(min_length=1, max_length=64, examples=["customer.create"])
    params: dict[str, Any] = Field(description="The operation's parameters")
    external_ref: str | None = Field(
        default=None, max_length=200, description="Your own reference (order id), echoed back"
    )


class IdempotencyHeader(BaseModel):
    idempotency_key: str | None = Field(
        default=None,
        max_length=200,
        description="Retrying with the same key and body returns the same job",
    )


class JobError(BaseModel):
    code: str
    message: str
    google_status: int | None = None
    google_reason: str | None = None
    google_method: str | None = None
    hint: str | None = None


class JobPublic(BaseModel):
    """A job as the billing system sees it."""

    id: str
    url: str
    instance: str
    operation: str
    state: str
    external_ref: str | None
    params: dict[str, Any]
    steps_done: list[str]
    attempts: int
    next_attempt_at: str | None
    result: dict[str, Any] | None
    error: JobError | None
    created_at: str | None
    updated_at: str | None
    started_at: str | None
    finished_at: str | None

    @classmethod
    def of(cls, job: Job, *, instance_name: str, url: str) -> JobPublic:
        error = None
        if job.error:
            error = JobError(**{k: v for k, v in job.error.items() if k in JobError.model_fields})
        return cls(
            id=job.id,
            url=url,
            instance=instance_name,
            operation=job.operation,
            state=job.state,
            external_ref=job.external_ref,
            params=job.params,
            steps_done=list((job.checkpoint or {}).keys()),
            attempts=job.attempts,
            next_attempt_at=iso(job.next_attempt_at),
            result=job.result,
            error=error,
            created_at=iso(job.created_at),
            updated_at=iso(job.updated_at),
            started_at=iso(job.started_at),
            finished_at=iso(job.finished_at),
        )


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    error: ErrorBody
