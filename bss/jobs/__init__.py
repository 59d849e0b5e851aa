"""A job's life, the unit of truth: accepted over the billing API (validated, written, and only
after commit sent to the broker), run by a worker under a lease with a checkpoint after each step,
retried or parked or failed by the kind of error, announced to billing by webhook, re-sent by the
sweep when its message or worker is lost, and retried or cancelled by operators."""

from bss.jobs.accept import (
    cancel_queued_job,
    dispatch,
    get_job,
    request_hash,
    reveal_secrets,
    submit_job,
    with_secrets,
)
from bss.jobs.actions import (
    CANCELLABLE,
    RETRYABLE,
    Actor,
    actions_for,
    bulk_cancel,
    bulk_retry,
    cancel_job,
    retry_job,
)
from bss.jobs.announce import job_event
from bss.jobs.fairness import fair_share, release, set_max_in_flight, set_weight
from bss.jobs.intake import Accepted, accept_job
from bss.jobs.runner import JobRunner
from bss.jobs.schemas import (
    ErrorResponse,
    IdempotencyHeader,
    JobCreate,
    JobEventPublic,
    JobList,
    JobListQuery,
    JobPublic,
    JobTimeline,
    OperationInfo,
    OperationList,
    job_create_schemas,
    operation_schemas,
)
from bss.jobs.search import (
    JobFilters,
    JobKey,
    JobSearch,
    count_jobs,
    encode_cursor,
    job_batches,
    list_jobs,
    page_of_jobs,
)
from bss.jobs.sweep import resume_waiting_jobs, sweep, sweep_forever

__all__ = [
    "Accepted",
    "CANCELLABLE",
    "RETRYABLE",
    "Actor",
    "ErrorResponse",
    "IdempotencyHeader",
    "JobCreate",
    "JobEventPublic",
    "JobFilters",
    "JobKey",
    "JobList",
    "JobListQuery",
    "JobPublic",
    "JobRunner",
    "JobSearch",
    "JobTimeline",
    "OperationInfo",
    "OperationList",
    "accept_job",
    "actions_for",
    "bulk_cancel",
    "bulk_retry",
    "cancel_job",
    "cancel_queued_job",
    "count_jobs",
    "dispatch",
    "encode_cursor",
    "fair_share",
    "get_job",
    "job_create_schemas",
    "job_batches",
    "job_event",
    "list_jobs",
    "operation_schemas",
    "page_of_jobs",
    "release",
    "request_hash",
    "resume_waiting_jobs",
    "retry_job",
    "reveal_secrets",
    "set_max_in_flight",
    "set_weight",
    "submit_job",
    "sweep",
    "sweep_forever",
    "with_secrets",
]
