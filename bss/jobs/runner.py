"""Running a job: lease, steps with checkpoints, and an outcome for every kind of failure."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from dramatiq.middleware.time_limit import TimeLimitExceeded

from bss.crypto import Vault
from bss.db import one_trip_engine
from bss.errors import (
    BssError,
    GoogleAuthorizationError,
    QuotaWait,
    TransientGoogleError,
    error_body,
)
from bss.gateway import CallRecord, Gateway, TokenCache, cached_credentials
from bss.jobs.accept import with_secrets
from bss.jobs.leases import LeaseKeeper
from bss.jobs.one_trip import (
    CHECKPOINT_AND_LINES,
    CHECKPOINT_PROGRESS_AND_LINES,
    lines_params,
)
from bss.jobs.outcomes import Notify, Resend, SliceOver
from bss.jobs.rows import (
    CHECKPOINT,
    CHECKPOINT_PROGRESS,
    LeasedJob,
    Line,
    insert_lines,
)
from bss.jobs.store import DbJobStore
from bss.jobs.taking import InstancesSeen, JobTaking
from bss.models import Instance, InstanceStatus, JobState, saved_id, utcnow
from bss.operations import PARTIAL_KEY, StepContext, get_operation, snake_keys
from bss.settings import Settings

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another worker took the job over (our lease lapsed): stop without touching it."""


# The pacer of an instance's Google calls (bss.gateway's quota limiter), or None for no pacing.
PacerFactory = Callable[[Instance], Any]


def _step_line(checkpoint: dict[str, Any], step: str) -> Line:
    """The timeline line of a step done: its output as saved."""
    output = snake_keys(checkpoint[step])
    return ("step", f"Step {step} done", {"step": step, "output": output})


class JobRunner(JobTaking):
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
        pacer_factory: PacerFactory | None = None,
    ) -> None:
        self.settings = settings
        self.leases = leases or LeaseKeeper(settings)
        self.vault = vault
        self.resend = resend
        self.notify = notify or (lambda _delivery_id: None)
        self.token_cache = token_cache
        self.gateway_factory = gateway_factory
        self.pacer_factory = pacer_factory
        # The timeline lines of the attempt this thread runs, not yet written (see
        # JobOutcomes._write_pending)
        self._timeline = threading.local()
        self._instances = InstancesSeen()

    def run(self, job_id: str, *, worker: str) -> str | None:
        """Run job `job_id` if it is due, not leased and not behind another job on the same
        customer (then it waits: see bss.jobs.ordering); returns the state it ends in."""
        leased = self._lease(job_id, worker)
        if leased is None:
            log.info("job %s not runnable now (final, leased elsewhere, or not due)", job_id)
            return None
        if isinstance(leased, str):
            return leased  # waiting behind another job on the same customer
        job, instance = leased
        self.leases.hold(job_id, worker)  # renewed while this process lives
        self._timeline.pending = []
        try:
            return self._run_leased(job, instance, worker)
        finally:
            self.leases.release(job_id)
            self._timeline.pending = []

    def _run_leased(self, job: LeasedJob, instance: Instance, worker: str) -> str | None:
        job_id = job.id
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
        except QuotaWait as exc:
            return self._wait_for_quota(job_id, worker, exc)
        except SliceOver as exc:
            return self._pause(job_id, worker, str(exc))
        except GoogleAuthorizationError as exc:
            self._mark_needs_reauth(instance.id, exc)
            return self._park(job_id, worker, exc.message)
        except TransientGoogleError as exc:
            return self._retry_or_fail(job_id, worker, exc)
        except BssError as exc:
            return self._finish(
                job_id,
                worker,
                JobState.FAILED,
                distributor_id=job.distributor_id,
                error=error_body(exc),
                instance_name=instance.name,
            )
        except TimeLimitExceeded:
            limit = self.settings.job_time_limit_seconds
            return self._retry_or_fail(
                job_id, worker, TimeoutError(f"the attempt ran longer than {limit}s")
            )
        except Exception as exc:  # a bug or an unforeseen failure: retried, then failed
            log.exception("job %s: unexpected error", job_id)
            return self._retry_or_fail(job_id, worker, exc)
        op = get_operation(job.operation)
        unsaved = list(self._timeline.pending)  # the last step's lines, written with the outcome
        try:
            return self._finish(
                job_id,
                worker,
                JobState.SUCCEEDED,
                distributor_id=job.distributor_id,
                result=op.outcome(checkpoint),
                saved=checkpoint,
                instance_name=instance.name,
            )
        except Exception:
            # The outcome was not written: save the last step alone where the database still
            # takes it, so that the next attempt does not run that step again (if it does not,
            # the step runs again as after a lost answer, checking Google first).
            self._timeline.pending[:] = unsaved
            with contextlib.suppress(Exception):
                self._checkpoint(job_id, worker, checkpoint, None)
            raise

    def _credentials(self, instance: Instance) -> Any:
        return cached_credentials(
            instance, vault=self.vault, settings=self.settings, cache=self.token_cache
        )

    def _run_steps(self, job: LeasedJob, instance: Instance, worker: str) -> dict[str, Any]:
        op = get_operation(job.operation)
        store = DbJobStore(
            self.settings.database_url,
            self.vault,
            job_id=job.id,
            instance_id=saved_id(instance),
        )
        secrets = (
            {k: v for k, v in store.secrets().items() if k in op.secret_fields}
            if op.secret_fields
            else {}
        )
        params = op.validate(with_secrets(job.params, secrets, op.secret_fields))
        checkpoint = dict(job.checkpoint or {})

        pending = self._timeline.pending

        def record(call: CallRecord) -> None:
            pending.append(
                (
                    "google_call",
                    call.method,
                    {
                        "method": call.method,
                        "status": call.status,
                        "reason": call.reason,
                        "duration_ms": call.duration_ms,
                        "attempt": call.attempt,
                    },
                )
            )

        def note(message: str) -> None:
            pending.append(("note", message, {}))

        started = time.monotonic()

        def save_progress(
            step: str, state: dict[str, Any], done: int, total: int, unit: str
        ) -> None:
            checkpoint.setdefault(PARTIAL_KEY, {})[step] = state
            progress = {"done": done, "total": total, "unit": unit}
            self._checkpoint(job.id, worker, checkpoint, None, progress=progress)
            if done < total and time.monotonic() - started > self.settings.job_slice_seconds:
                # Give the thread back: the job continues from here when a worker is free.
                raise SliceOver(f"Paused at {done}/{total} {unit}; continues shortly")

        extra = {"pacer": self.pacer_factory(instance)} if self.pacer_factory else {}
        gateway = self.gateway_factory(
            settings=self.settings, credentials=self._credentials(instance), record=record, **extra
        )
        ctx = StepContext(
            gateway,
            params,
            checkpoint,
            note,
            store=store,
            accepted_at=job.created_at,
            save_progress=save_progress,
        )
        last = op.steps[-1][0]
        for name, step in op.steps:
            if name in checkpoint:
                continue  # done in an earlier attempt
            output = step(ctx)
            checkpoint[name] = output
            (checkpoint.get(PARTIAL_KEY) or {}).pop(name, None)
            ctx.fresh.add(name)
            if name == last:  # saved with the outcome (rows.SUCCEED), its line kept till then
                pending.append(_step_line(checkpoint, name))
            else:
                self._checkpoint(job.id, worker, checkpoint, name)
        return checkpoint

    def _checkpoint(
        self,
        job_id: str,
        worker: str,
        checkpoint: dict[str, Any],
        step: str | None,
        *,
        progress: dict[str, Any] | None = None,
    ) -> None:
        """Save the checkpoint (after a step, or a long step's chunk with its progress)."""
        now = utcnow()
        params = {
            "job_id": job_id,
            "worker": worker,
            "saved": checkpoint,
            "now": now,
            "until": now + timedelta(seconds=self.settings.job_lease_seconds),
        }
        lines = self._take_pending()
        if step is not None:
            lines.append(_step_line(checkpoint, step))
        one_trip = one_trip_engine(self.settings.database_url)
        if one_trip is not None:  # PostgreSQL: the UPDATE and its lines, one statement
            write = CHECKPOINT_PROGRESS_AND_LINES if progress else CHECKPOINT_AND_LINES
            with one_trip.connect() as conn:
                saved_row = conn.execute(
                    write, {**params, "done": progress, **lines_params(lines, now)}
                ).first()
            if saved_row is None:
                raise LeaseLost(job_id)
            return

        def save(conn: Any) -> None:
            if progress:
                saved = conn.execute(CHECKPOINT_PROGRESS, {**params, "done": progress})
            else:
                saved = conn.execute(CHECKPOINT, params)
            if not saved.rowcount:
                raise LeaseLost(job_id)
            insert_lines(conn, job_id, lines)

        self._grouped(save)
