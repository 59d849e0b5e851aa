"""Running a job: lease, steps with checkpoints, and an outcome for every kind of failure."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, select

from bss.crypto import Vault
from bss.db import session_scope
from bss.errors import (
    BssError,
    GoogleAuthorizationError,
    GoogleError,
    TransientGoogleError,
)
from bss.gateway import CallRecord, Gateway
from bss.gateway.credentials import instance_credentials
from bss.jobs import add_event
from bss.models import Instance, InstanceStatus, Job, JobState, utcnow
from bss.operations import StepContext, get_operation
from bss.settings import Settings

log = logging.getLogger(__name__)

# Sends a job's message again, after a delay in milliseconds.
Resend = Callable[[str, int], None]

RUNNABLE = (JobState.QUEUED, JobState.RETRYING)


class JobRunner:
    """Runs jobs by id; safe to call twice for the same job at once (the lease decides)."""

    def __init__(
        self,
        *,
        settings: Settings,
        vault: Vault,
        resend: Resend,
        gateway_factory: Callable[..., Gateway] = Gateway,
    ) -> None:
        self.settings = settings
        self.vault = vault
        self.resend = resend
        self.gateway_factory = gateway_factory

    def _session(self) -> Any:
        return session_scope(self.settings.database_url)

    def run(self, job_id: str, *, worker: str) -> str | None:
        """Run job `job_id` if it is due and not leased; returns the state it ends in."""
        if not self._lease(job_id, worker):
            log.info("job %s not runnable now (final, leased elsewhere, or not due)", job_id)
            return None
        with self._session() as s:
            job = s.get(Job, job_id)
            instance = s.get(Instance, job.instance_id) if job else None
            assert job is not None and instance is not None
            add_event(
                s,
                job.id,
                "state",
                f"Attempt {job.attempts} started by {worker}",
                state=JobState.RUNNING,
                attempt=job.attempts,
            )
        if instance.status in (InstanceStatus.NEEDS_REAUTH, InstanceStatus.DISABLED):
            return self._park(job_id, f"Instance {instance.name!r} is {instance.status}.")
        try:
            checkpoint = self._run_steps(job, instance, worker)
        except GoogleAuthorizationError as exc:
            self._mark_needs_reauth(instance.id, exc)
            return self._park(job_id, exc.message)
        except TransientGoogleError as exc:
            return self._retry_or_fail(job_id, exc)
        except BssError as exc:
            return self._finish(job_id, JobState.FAILED, error=error_body(exc))
        except Exception as exc:  # a bug or an unforeseen failure: retried, then failed
            log.exception("job %s: unexpected error", job_id)
            return self._retry_or_fail(job_id, exc)
        op = get_operation(job.operation)
        return self._finish(job_id, JobState.SUCCEEDED, result=op.result(checkpoint))

    def _lease(self, job_id: str, worker: str) -> bool:
        now = utcnow()
        lease_until = now + timedelta(seconds=self.settings.job_lease_seconds)
        with self._session() as s:
            taken = s.execute(
                update(Job)
                .where(
                    Job.id == job_id,  # type: ignore[arg-type]
                    or_(
                        Job.state.in_(RUNNABLE),  # type: ignore[attr-defined]
                        # a worker that died mid-job leaves a running job with a lapsed lease
                        (Job.state == JobState.RUNNING) & (Job.lease_expires_at < now),  # type: ignore[operator]
                    ),
                    or_(
                        Job.next_attempt_at.is_(None),
                        Job.next_attempt_at <= now + timedelta(seconds=1),
                    ),  # type: ignore[union-attr,operator]
                )
                .values(
                    state=JobState.RUNNING,
                    lease_owner=worker,
                    lease_expires_at=lease_until,
                    attempts=Job.attempts + 1,
                    started_at=now,
                    updated_at=now,
                    next_attempt_at=None,
                )
            )
            return bool(taken.rowcount)  # type: ignore[attr-defined]

    def _run_steps(self, job: Job, instance: Instance, worker: str) -> dict[str, Any]:
        op = get_operation(job.operation)
        params = op.validate(job.params)
        checkpoint = dict(job.checkpoint or {})

        def record(call: CallRecord) -> None:
            with self._session() as s:
                add_event(
                    s,
                    job.id,
                    "google_call",
                    call.method,
                    method=call.method,
                    status=call.status,
                    reason=call.reason,
                    duration_ms=call.duration_ms,
                    attempt=call.attempt,
                )

        def note(message: str) -> None:
            with self._session() as s:
                add_event(s, job.id, "note", message)

        gateway = self.gateway_factory(
            settings=self.settings,
            credentials=instance_credentials(instance, vault=self.vault, settings=self.settings),
            record=record,
        )
        for name, step in op.steps:
            if name in checkpoint:
                continue  # done in an earlier attempt
            output = step(StepContext(gateway, params, checkpoint, note))
            checkpoint[name] = output
            self._checkpoint(job.id, worker, checkpoint, name)
        return checkpoint

    def _checkpoint(self, job_id: str, worker: str, checkpoint: dict[str, Any], step: str) -> None:
        now = utcnow()
        with self._session() as s:
            s.execute(
                update(Job)
                .where(Job.id == job_id, Job.lease_owner == worker)  # type: ignore[arg-type]
                .values(
                    checkpoint=checkpoint,
                    updated_at=now,
                    lease_expires_at=now + timedelta(seconds=self.settings.job_lease_seconds),
                )
            )
            add_event(s, job_id, "step", f"Step {step} done", step=step, output=checkpoint[step])

    def _finish(
        self,
        job_id: str,
        state: JobState,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> str:
        now = utcnow()
        with self._session() as s:
            job = s.get(Job, job_id)
            assert job is not None
            job.state, job.result, job.error = state, result, error
            job.finished_at = job.updated_at = now
            job.lease_owner = job.lease_expires_at = job.next_attempt_at = None
            s.add(job)
            message = (
                "Succeeded"
                if state == JobState.SUCCEEDED
                else (f"Failed: {error['message']}" if error else str(state))
            )
            add_event(s, job_id, "state", message, state=state)
        return state

    def _retry_or_fail(self, job_id: str, exc: Exception) -> str:
        with self._session() as s:
            job = s.get(Job, job_id)
            assert job is not None
            error = error_body(exc)
            if job.attempts >= self.settings.job_max_attempts:
                error["message"] = f"Gave up after {job.attempts} attempts: {error['message']}"
                return self._finish(job_id, JobState.FAILED, error=error)
            delay = self.backoff(job.attempts, getattr(exc, "retry_after", None))
            job.state = JobState.RETRYING
            job.error = error
            job.next_attempt_at = utcnow() + timedelta(seconds=delay)
            job.lease_owner = job.lease_expires_at = None
            job.updated_at = utcnow()
            s.add(job)
            add_event(
                s,
                job_id,
                "state",
                f"Will retry in {delay:.0f}s: {error['message']}",
                state=JobState.RETRYING,
                delay_seconds=round(delay, 1),
            )
        self.resend(job_id, int(delay * 1000))
        return JobState.RETRYING

    def backoff(self, attempts: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter, at least Google's Retry-After."""
        cap = min(
            self.settings.job_retry_max_seconds,
            self.settings.job_retry_base_seconds * 2 ** max(attempts - 1, 0),
        )
        delay = random.uniform(cap / 2, cap)
        return max(delay, retry_after or 0.0)

    def _park(self, job_id: str, why: str) -> str:
        with self._session() as s:
            job = s.get(Job, job_id)
            assert job is not None
            job.state = JobState.WAITING_REAUTH
            job.lease_owner = job.lease_expires_at = None
            job.updated_at = utcnow()
            job.error = {
                "code": "waiting_reauth",
                "message": why,
                "hint": "Re-authenticate the instance; the job then resumes by itself.",
            }
            s.add(job)
            add_event(
                s,
                job_id,
                "state",
                f"Waiting for re-authentication: {why}",
                state=JobState.WAITING_REAUTH,
            )
        return JobState.WAITING_REAUTH

    def _mark_needs_reauth(self, instance_id: int | None, exc: GoogleError) -> None:
        with self._session() as s:
            instance = s.get(Instance, instance_id)
            if instance is not None and instance.status == InstanceStatus.AUTHENTICATED:
                instance.status = InstanceStatus.NEEDS_REAUTH
                instance.last_error = f"{exc.reason}: {exc.message}"
                instance.updated_at = utcnow()
                s.add(instance)


def error_body(exc: BaseException) -> dict[str, Any]:
    """The job's `error` for an exception: code, Google's reason, message, hint."""
    if isinstance(exc, GoogleError):
        return {
            "code": exc.code,
            "google_status": exc.status,
            "google_reason": exc.reason,
            "google_method": exc.method,
            "message": exc.message,
            "hint": exc.hint,
        }
    if isinstance(exc, BssError):
        return {"code": exc.code, "message": exc.message, "hint": exc.hint, "details": exc.details}
    return {
        "code": "internal_error",
        "message": f"{type(exc).__name__}: {exc}",
        "hint": "Retried automatically; if it persists, tell the platform operator.",
    }


def resume_waiting_jobs(session: Session, instance_id: int) -> list[str]:
    """Jobs parked on an instance, put back in the queue once it is re-authenticated."""
    jobs = session.exec(
        select(Job).where(Job.instance_id == instance_id, Job.state == JobState.WAITING_REAUTH)
    ).all()
    for job in jobs:
        job.state = JobState.QUEUED
        job.updated_at = utcnow()
        session.add(job)
        add_event(
            session,
            job.id,
            "state",
            "Instance re-authenticated: queued again",
            state=JobState.QUEUED,
        )
    return [j.id for j in jobs]
