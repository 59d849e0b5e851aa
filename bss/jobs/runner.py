"""Running a job: lease, steps with checkpoints, and an outcome for every kind of failure."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from dramatiq.middleware.time_limit import TimeLimitExceeded
from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from bss.crypto import Vault
from bss.db import session_scope
from bss.errors import (
    BssError,
    GoogleAuthorizationError,
    GoogleError,
    TransientGoogleError,
    error_body,
)
from bss.gateway import CallRecord, Gateway, TokenCache, fingerprint, instance_credentials
from bss.instances import mark_needs_reauth
from bss.jobs.accept import with_secrets
from bss.jobs.announce import job_event
from bss.jobs.leases import LeaseKeeper
from bss.jobs.ordering import FINAL, blocker, wait_behind, waiting_for
from bss.jobs.store import DbJobStore, settle_secrets
from bss.models import Instance, InstanceStatus, Job, JobState, add_event, saved_id, utcnow
from bss.operations import StepContext, get_operation, snake_keys
from bss.settings import Settings

log = logging.getLogger(__name__)

# Sends a job's message again, after a delay in milliseconds.
Resend = Callable[[str, int], None]
# Sends a webhook delivery's message.
Notify = Callable[[str], None]

RUNNABLE = (JobState.QUEUED, JobState.RETRYING, JobState.WAITING)


class LeaseLost(Exception):
    """Another worker took the job over (our lease lapsed): stop without touching it."""


class JobRunner:
    """Runs jobs by id; safe to call twice for the same job at once (the lease decides)."""

    def __init__(
        self,
        *,
        settings: Settings,
        vault: Vault,
        resend: Resend,
        notify: Notify | None = None,
        token_cache: TokenCache | None = None,
        gateway_factory: Callable[..., Gateway] = Gateway,
        leases: LeaseKeeper | None = None,
    ) -> None:
        self.settings = settings
        self.leases = leases or LeaseKeeper(settings)
        self.vault = vault
        self.resend = resend
        self.notify = notify or (lambda _delivery_id: None)
        self.token_cache = token_cache
        self.gateway_factory = gateway_factory

    def _session(self) -> Any:
        return session_scope(self.settings.database_url)

    def run(self, job_id: str, *, worker: str) -> str | None:
        """Run job `job_id` if it is due, not leased and not behind another job on the same
        customer (then it waits: see bss.jobs.ordering); returns the state it ends in."""
        if self._behind_another(job_id):
            return JobState.WAITING
        if not self._lease(job_id, worker):
            log.info("job %s not runnable now (final, leased elsewhere, or not due)", job_id)
            return None
        self.leases.hold(job_id, worker)  # renewed while this process lives
        try:
            return self._run_leased(job_id, worker)
        finally:
            self.leases.release(job_id)

    def _run_leased(self, job_id: str, worker: str) -> str | None:
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
        if instance.status == InstanceStatus.DISABLED:
            return self._park(
                job_id,
                worker,
                f"Instance {instance.name!r} is disabled.",
                hint="The job resumes by itself when the instance is enabled again.",
            )
        if instance.status == InstanceStatus.NEEDS_REAUTH:
            return self._park(job_id, worker, f"Instance {instance.name!r} is {instance.status}.")
        try:
            checkpoint = self._run_steps(job, instance, worker)
        except LeaseLost:
            log.warning("job %s: lease lost to another worker; leaving it", job_id)
            return None
        except GoogleAuthorizationError as exc:
            self._mark_needs_reauth(instance.id, exc)
            return self._park(job_id, worker, exc.message)
        except TransientGoogleError as exc:
            return self._retry_or_fail(job_id, worker, exc)
        except BssError as exc:
            return self._finish(job_id, worker, JobState.FAILED, error=error_body(exc))
        except TimeLimitExceeded:
            limit = self.settings.job_time_limit_seconds
            return self._retry_or_fail(
                job_id, worker, TimeoutError(f"the attempt ran longer than {limit}s")
            )
        except Exception as exc:  # a bug or an unforeseen failure: retried, then failed
            log.exception("job %s: unexpected error", job_id)
            return self._retry_or_fail(job_id, worker, exc)
        op = get_operation(job.operation)
        return self._finish(job_id, worker, JobState.SUCCEEDED, result=op.outcome(checkpoint))

    def _behind_another(self, job_id: str) -> bool:
        with self._session() as s:
            job = s.get(Job, job_id)
            if job is None or job.state not in RUNNABLE:
                return False  # final, or running: the lease decides
            first = blocker(s, job)
            if first is None:
                return False
            wait_behind(s, job, first)
            first_id = first.id
        # The job it waits for may have ended between the look and the commit: look again.
        with self._session() as s:
            first = s.get(Job, first_id)
            if first is None or first.state in FINAL:
                self.resend(job_id, 0)
        return True

    def _lease(self, job_id: str, worker: str) -> bool:
        now = utcnow()
        lease_until = now + timedelta(seconds=self.settings.job_lease_seconds)
        with self._session() as s:
            taken = s.execute(
                update(Job)
                .where(
                    col(Job.id) == job_id,
                    or_(
                        col(Job.state).in_(RUNNABLE),
                        # a worker that died mid-job leaves a running job with a lapsed lease
                        (col(Job.state) == JobState.RUNNING) & (col(Job.lease_expires_at) < now),
                    ),
                    or_(
                        col(Job.next_attempt_at).is_(None),
                        col(Job.next_attempt_at) <= now + timedelta(seconds=1),
                    ),
                )
                .values(
                    state=JobState.RUNNING,
                    waiting_for=None,
                    lease_owner=worker,
                    lease_expires_at=lease_until,
                    attempts=Job.attempts + 1,
                    started_at=now,
                    updated_at=now,
                    next_attempt_at=None,
                )
            )
            return bool(taken.rowcount)

    def _credentials(self, instance: Instance) -> Any:
        creds = instance_credentials(instance, vault=self.vault, settings=self.settings)
        if self.token_cache is None or instance.id is None:
            return creds
        grant = fingerprint(
            instance.mode,
            instance.refresh_token_enc or instance.service_account_key_enc,
            instance.delegated_admin,
        )
        return self.token_cache.wrap(creds, instance_id=instance.id, grant=grant)

    def _run_steps(self, job: Job, instance: Instance, worker: str) -> dict[str, Any]:
        op = get_operation(job.operation)
        store = DbJobStore(
            self.settings.database_url,
            self.vault,
            job_id=job.id,
            instance_id=saved_id(instance),
        )
        secrets = {k: v for k, v in store.secrets().items() if k in op.secret_fields}
        params = op.validate(with_secrets(job.params, secrets, op.secret_fields))
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
            settings=self.settings, credentials=self._credentials(instance), record=record
        )
        ctx = StepContext(
            gateway, params, checkpoint, note, store=store, accepted_at=job.created_at
        )
        for name, step in op.steps:
            if name in checkpoint:
                continue  # done in an earlier attempt
            output = step(ctx)
            checkpoint[name] = output
            ctx.fresh.add(name)
            self._checkpoint(job.id, worker, checkpoint, name)
        return checkpoint

    def _checkpoint(self, job_id: str, worker: str, checkpoint: dict[str, Any], step: str) -> None:
        now = utcnow()
        with self._session() as s:
            saved = s.execute(
                update(Job)
                .where(
                    col(Job.id) == job_id,
                    col(Job.lease_owner) == worker,
                    col(Job.state) == JobState.RUNNING,
                )
                .values(
                    checkpoint=checkpoint,
                    updated_at=now,
                    lease_expires_at=now + timedelta(seconds=self.settings.job_lease_seconds),
                )
            )
            if not saved.rowcount:
                raise LeaseLost(job_id)
            add_event(
                s,
                job_id,
                "step",
                f"Step {step} done",
                step=step,
                output=snake_keys(checkpoint[step]),
            )

    def _owned(self, s: Session, job_id: str, worker: str) -> Job | None:
        """The job, if this worker still holds its lease (else another worker owns it now)."""
        job = s.exec(select(Job).where(Job.id == job_id).with_for_update()).first()
        if job is None or job.lease_owner != worker or job.state != JobState.RUNNING:
            log.warning("job %s: no longer ours (%s)", job_id, job.state if job else "gone")
            return None
        return job

    def _finish(
        self,
        job_id: str,
        worker: str,
        state: JobState,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> str | None:
        now = utcnow()
        deliveries = []
        with self._session() as s:
            job = self._owned(s, job_id, worker)
            if job is None:
                return None
            job.state, job.result, job.error = state, result, error
            job.finished_at = job.updated_at = now
            job.lease_owner = job.lease_expires_at = job.next_attempt_at = None
            s.add(job)
            # A given password is no longer needed. A generated one is shown once if it was
            # not mailed, or if the job failed after the user got it (else nobody would know it).
            user_made = any(
                isinstance(out, dict) and out.get("primaryEmail") and out.get("created")
                for out in (job.checkpoint or {}).values()
            )
            settle_secrets(
                s,
                job_id,
                given=get_operation(job.operation).secret_fields,
                keep_generated=state == JobState.SUCCEEDED or user_made,
                reveal_generated=state != JobState.SUCCEEDED,
            )
            message = (
                "Succeeded"
                if state == JobState.SUCCEEDED
                else (f"Failed: {error['message']}" if error else str(state))
            )
            add_event(s, job_id, "state", message, state=state)
            event = "job.succeeded" if state == JobState.SUCCEEDED else "job.failed"
            deliveries.append(job_event(s, self.settings, job, event))
            released = waiting_for(s, job_id)
        self._send(deliveries)
        for next_id in released:  # the jobs behind this one look again
            self.resend(next_id, 0)
        return state

    def _send(self, deliveries: list[str | None]) -> None:
        for delivery_id in deliveries:
            if delivery_id:
                self.notify(delivery_id)

    def _retry_or_fail(self, job_id: str, worker: str, exc: Exception) -> str | None:
        with self._session() as s:
            job = self._owned(s, job_id, worker)
            if job is None:
                return None
            error = error_body(exc)
            if job.attempts >= self.settings.job_max_attempts:
                error["message"] = f"Gave up after {job.attempts} attempts: {error['message']}"
                final = True
            else:
                final = False
                delay = self.backoff(job.attempts, getattr(exc, "retry_after", None))
                job.state = JobState.RETRYING
                job.error = error
                job.next_attempt_at = utcnow() + timedelta(seconds=delay)
                job.lease_owner = job.lease_expires_at = None
                job.updated_at = job.enqueued_at = utcnow()
                s.add(job)
                add_event(
                    s,
                    job_id,
                    "state",
                    f"Will retry in {delay:.1f}s: {error['message']}",
                    state=JobState.RETRYING,
                    delay_seconds=round(delay, 1),
                )
        if final:
            return self._finish(job_id, worker, JobState.FAILED, error=error)
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

    def _park(
        self,
        job_id: str,
        worker: str,
        why: str,
        *,
        hint: str = "Re-authenticate the instance; the job then resumes by itself.",
    ) -> str | None:
        deliveries = []
        with self._session() as s:
            job = self._owned(s, job_id, worker)
            if job is None:
                return None
            job.state = JobState.WAITING_REAUTH
            job.lease_owner = job.lease_expires_at = None
            job.updated_at = utcnow()
            job.error = {
                "code": "waiting_reauth",
                "message": why,
                "hint": hint,
            }
            s.add(job)
            add_event(
                s,
                job_id,
                "state",
                f"Waiting for its instance: {why}",
                state=JobState.WAITING_REAUTH,
            )
            deliveries.append(job_event(s, self.settings, job, "job.waiting_reauth"))
        self._send(deliveries)
        return JobState.WAITING_REAUTH

    def _mark_needs_reauth(self, instance_id: int | None, exc: GoogleError) -> None:
        with self._session() as s:
            delivery = mark_needs_reauth(s, instance_id, exc)
        self._send([delivery])
