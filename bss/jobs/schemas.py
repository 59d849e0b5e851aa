"""Public shapes of what the billing API accepts and returns (also its OpenAPI document)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from bss.models import Job, JobState, iso
from bss.operations import OPERATIONS, shown_steps

if TYPE_CHECKING:
    from bss.jobs.intake import NewJob


def job_create_schemas() -> dict[str, dict[str, Any]]:
    """JobCreate's schemas for the OpenAPI document: one request shape per operation, tied to
    its params model by `operation` (a discriminator that generated clients understand).

    The server reads the body as JobCreate and validates `params` with the operation's own
    model (bss.operations); the document shows exactly those models.
    """
    base = JobCreate.model_json_schema(ref_template="#/components/schemas/{model}")
    out: dict[str, dict[str, Any]] = {}
    mapping = {}
    for name, op in sorted(OPERATIONS.items()):
        variant = f"JobCreate.{name}"
        props = dict(base["properties"])
        props["operation"] = {"type": "string", "enum": [name], "description": op.summary}
        props["params"] = {"$ref": f"#/components/schemas/{op.params_model.__name__}"}
        out[variant] = {
            "title": variant,
            "type": "object",
            "properties": props,
            "required": base["required"],
            "additionalProperties": False,
        }
        mapping[name] = f"#/components/schemas/{variant}"
    out["JobCreate"] = {
        "title": "JobCreate",
        "description": "A provisioning request: `operation` decides the shape of `params`.",
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "operation", "mapping": mapping},
    }
    return out


def operation_schemas() -> dict[str, dict[str, Any]]:
    """JSON schemas of every operation's params model (and what they refer to), by name."""
    out: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS.values():
        schema = op.params_model.model_json_schema(ref_template="#/components/schemas/{model}")
        out.update(schema.pop("$defs", {}))
        schema.setdefault("description", op.summary)
        out[op.params_model.__name__] = schema
    return out


class JobCreate(BaseModel):
    """A provisioning request."""

    model_config = ConfigDict(extra="forbid")

    instance: str = Field(min_length=1, max_length=100, description="The instance's System Name")
    operation: str = Field(min_length=1, max_length=64, examples=["customer.create"])
    params: dict[str, Any] = Field(description="The operation's parameters")
    external_ref: str | None = Field(
        default=None, max_length=200, description="Your own reference (order id), echoed back"
    )


_PLAIN_SCHEMAS: dict[type[BaseModel], dict[str, Any]] = {}


class SchemaOnce(BaseModel):
    """A header or query model whose plain JSON schema is built once.

    flask-openapi3 reads a header or query model's JSON schema (without arguments) on every
    request, to find its fields' types, and pydantic builds it anew each time. That call is
    answered from the schema built the first time (readers must not change it); a call with
    arguments, as for the OpenAPI document, is pydantic's own.
    """

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if args or kwargs:
            return super().model_json_schema(*args, **kwargs)
        schema = _PLAIN_SCHEMAS.get(cls)
        if schema is None:
            schema = _PLAIN_SCHEMAS[cls] = super().model_json_schema()
        return schema


class IdempotencyHeader(SchemaOnce):
    idempotency_key: str | None = Field(
        default=None,
        alias="Idempotency-Key",
        max_length=200,
        description="Retrying with the same key and body returns the same job",
    )


class JobProgress(BaseModel):
    """How far a long job has got."""

    done: int
    total: int
    unit: str


class JobError(BaseModel):
    code: str
    message: str
    # Google's answer, only when Google answered (refused_by_rule: we did not ask it)
    google_status: int | None = None
    google_reason: str | None = None
    google_method: str | None = None
    # The rule we refused by before calling Google (refused_by_rule): seatsBelowCommitment...
    rule: str | None = None
    hint: str | None = None
    details: Any = None


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
    # While `waiting`: the earlier job on the same customer this one runs after
    waiting_for: str | None = None
    # Why a job that is not running waits, in words: the earlier job on its customer, its
    # Google API's quota (`waiting_quota`, until `next_attempt_at`), or its distributor's share
    # of the workers (`queued`)
    wait_reason: str | None = None
    # A long job's progress: {"done": 412, "total": 1000, "unit": "users"}
    progress: JobProgress | None = None
    # Said when the answer needs a word more, e.g. accepted while the queue was unreachable.
    notice: str | None = None

    @classmethod
    def of(cls, job: Job | NewJob, *, instance_name: str, url: str) -> JobPublic:
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
            steps_done=shown_steps(job.checkpoint or {}),
            attempts=job.attempts,
            next_attempt_at=iso(job.next_attempt_at),
            result=job.result,
            error=error,
            created_at=iso(job.created_at),
            updated_at=iso(job.updated_at),
            started_at=iso(job.started_at),
            finished_at=iso(job.finished_at),
            waiting_for=job.waiting_for if job.state == JobState.WAITING else None,
            wait_reason=job.wait_reason if job.state in WAITING_STATES else None,
            progress=JobProgress(**job.progress) if job.progress else None,
        )


WAITING_STATES = (JobState.QUEUED, JobState.WAITING, JobState.WAITING_QUOTA)


JobStateName = Literal[
    "queued",
    "waiting",
    "waiting_quota",
    "running",
    "retrying",
    "waiting_reauth",
    "succeeded",
    "failed",
    "cancelled",
]


_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}"  # a date alone means its midnight, UTC
    r"|\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})"
)


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value.strip()):
        raise ValueError(
            "must be an RFC 3339 date-time with its offset, e.g. 2026-11-28T09:30:00Z, "
            "or a date, e.g. 2026-11-28"
        )
    text = value.strip()
    if len(text) == 10:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    return text


TimeFilter = Annotated[datetime, BeforeValidator(_rfc3339)]


class JobListQuery(SchemaOnce):
    """Filters and paging of GET /jobs (newest first; follow `next_cursor` for more)."""

    model_config = ConfigDict(extra="forbid")

    state: JobStateName | None = None
    operation: str | None = Field(default=None, max_length=64, description="e.g. order.create")
    instance: str | None = Field(default=None, max_length=100, description="System Name")
    external_ref: str | None = Field(default=None, max_length=200)
    created_after: TimeFilter | None = Field(
        default=None, description="RFC 3339 date-time (or a date), inclusive"
    )
    created_before: TimeFilter | None = Field(
        default=None, description="RFC 3339 date-time (or a date), exclusive"
    )
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=500, description="From next_cursor")


class JobList(BaseModel):
    """A page of jobs."""

    jobs: list[JobPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last")


class OperationInfo(BaseModel):
    name: str
    summary: str
    params_schema: str = Field(description="Reference of the params model in this document")
    steps: list[str]


class OperationList(BaseModel):
    operations: list[OperationInfo]


class JobEventPublic(BaseModel):
    """A line of a job's timeline: a state change, a step, a Google call, a webhook attempt."""

    at: str | None
    kind: str
    message: str
    data: dict[str, Any]


class JobTimeline(BaseModel):
    job_id: str
    events: list[JobEventPublic]


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    error: ErrorBody
