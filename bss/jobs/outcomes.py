"""How a job's attempt ends: succeeded, failed, retried later, or parked on its instance; each
ending is written under the lease, put on the timeline, announced, and frees what waited."""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, cast

from sqlalchemy.engine import Connection
from sqlmodel import Session, select

from bss.db import one_trip_engine, session_scope, writer_turn
from bss.errors import GoogleError, QuotaWait, error_body
from bss.instances import mark_needs_reauth
from bss.jobs.announce import job_event
from bss.jobs.fairness import Claimed, claim_turns, send_claimed
from bss.jobs.one_trip import FINISH_AND_LINES, SUCCEED_AND_LINES, lines_params
from bss.jobs.ordering import waiting_for
from bss.jobs.rows import (
    FINISH,
    SUCCEED,
    Ending,
    LeasedJob,
    Line,
    insert_lines,
    settle_secrets,
)
from bss.models import Job, JobState, add_event, utcnow
from bss.notify import job_failed
from bss.operations import get_operation
from bss.settings import Settings
from bss.write_group import write_group

log = logging.getLogger(__name__)
T = TypeVar("T")

# Sends a job's message again, after a delay in milliseconds.
Resend = Callable[[str, int], None]
# Sends a webhook delivery's message.
Notify = Callable[[str], None]


class SliceOver(Exception):
    """A long job saved a chunk after running its time slice: it gives its thread back."""


@dataclass(frozen=True)
class _Ended:
    """What a job's end leaves to do once it committed: the webhook delivery to send, the jobs
    that waited behind it, the held jobs it released."""

    delivery: str | None
    released: list[str]
    freed: Claimed


class JobOutcomes:
    """The endings of a leased attempt; JobRunner runs the attempt itself."""

    settings: Settings
    resend: Resend
    notify: Notify
    # `pending`: the timeline lines (kind, message, data) of the attempt this thread runs that
    # are not written yet: Google calls and notes wait for the next checkpoint or the outcome,
    # so that a step's lines take one transaction, not one each.
    _timeline: threading.local

    @contextlib.contextmanager
    def _session(self) -> Iterator[Session]:
        """A session whose transaction is this process's turn to write (bss.db.writer_turn)."""
        url = self.settings.database_url
        with writer_turn(url), session_scope(url) as s:
            yield s

    def _grouped(self, write: Callable[[Connection], T]) -> T:
        """`write` (Core statements on the connection it is given), committed with the writes
        of this process's other threads waiting at the same moment (bss.write_group): on
        SQLite, whose one writer they would otherwise take turns to be. It runs in whichever
        thread leads the group, and again alone if another write of the group fails: it touches
        nothing but the database (this thread's timeline lines are taken before)."""
        return write_group(self.settings.database_url).write(write)

    def _grouped_session(self, write: Callable[[Session], T]) -> T:
        """`_grouped` for a write through a session (flushed when `write` returns)."""
        return write_group(self.settings.database_url).write_session(write)

    def _take_pending(self) -> list[Line]:
        """The attempt's timeline lines kept so far (now the caller's to write)."""
        pending: list[Line] = getattr(self._timeline, "pending", None) or []
        taken = list(pending)
        pending.clear()
        return taken

    def _write_pending(self, s: Session | Connection, job_id: str, *last: Line) -> None:
        """Write the attempt's timeline lines kept so far, then `last`, in the caller's
        transaction."""
        insert_lines(s, job_id, [*self._take_pending(), *last])

    def _claim_freed(self, s: Session, distributor_id: int, *, held: bool | None = None) -> Claimed:
        """One of the distributor's jobs leaves the workers (ends or waits): its fair share has
        room for another (bss.jobs.fairness), claimed in the same transaction. `held`: whether
        the distributor has held jobs, when the caller already read it."""
        return claim_turns(s, self.settings, distributor_id, held=held)

    def _send_freed(self, claimed: Claimed | None) -> None:
        """Send the jobs `_claim_freed` claimed, once its transaction committed."""
        if claimed is None:
            return
        try:
            send_claimed(self.settings, claimed, lambda job_id: self.resend(job_id, 0))
        except Exception:  # they stay claimed but unsent: the sweep sends them
            log.exception("could not send released jobs %s", claimed.ids)

    def _wait_for_quota(self, job_id: str, worker: str, exc: QuotaWait) -> str | None:
        """The instance's quota is spent for now: resume later, no attempt spent."""
        return self._set_aside(
            job_id,
            worker,
            JobState.WAITING_QUOTA,
            exc.message,
            delay=exc.seconds,
            api=exc.api,
            project=exc.project,
            limit_per_second=exc.limit,
        )

    def _pause(self, job_id: str, worker: str, why: str) -> str | None:
        """A long job ran its slice: back in the queue, where it continues from its progress."""
        return self._set_aside(job_id, worker, JobState.QUEUED, why, delay=0.0)

    def _set_aside(
        self, job_id: str, worker: str, state: JobState, why: str, *, delay: float, **data: Any
    ) -> str | None:
        now = utcnow()
        with self._session() as s:
            job = self._owned(s, job_id, worker)
            if job is None:
                return None
            job.state, job.wait_reason = state, why[:300]
            job.lease_owner = job.lease_expires_at = None
            job.next_attempt_at = now + timedelta(seconds=delay) if delay else None
            job.updated_at = job.enqueued_at = now
            s.add(job)
            line = ("state", why, {"state": state, "set_aside": True, **data})
            self._write_pending(s, job_id, line)
            freed = self._claim_freed(s, job.distributor_id) if state != JobState.QUEUED else None
        self.resend(job_id, int(delay * 1000))
        self._send_freed(freed)
        return state

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
        distributor_id: int,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        saved: dict[str, Any] | None = None,
        instance_name: str | None = None,
    ) -> str | None:
        """End the attempt in `state`; `saved`: the checkpoint to save with it (the job's steps
        all succeeded, the last one not saved yet); `instance_name`, when the caller knows it,
        for billing's event."""
        now = utcnow()
        params = {
            "job_id": job_id,
            "of_distributor": distributor_id,
            "worker": worker,
            "outcome": state,
            "outcome_result": result,
            "outcome_error": error,
            "now": now,
            "saved": saved,
        }
        message = (
            "Succeeded"
            if state == JobState.SUCCEEDED
            else (f"Failed: {error['message']}" if error else str(state))
        )
        last: Line = ("state", message, {"state": state})
        lines = [*self._take_pending(), last]
        one_trip = one_trip_engine(self.settings.database_url) is not None

        def end(s: Session) -> _Ended | None:
            conn = s.connection()  # for statements on the tables (see JobRunner._lease)
            if one_trip:  # PostgreSQL: the UPDATE and the lines in one statement
                write = FINISH_AND_LINES if saved is None else SUCCEED_AND_LINES
                ended = conn.execute(write, {**params, **lines_params(lines, now)}).first()
            else:
                ended = conn.execute(FINISH if saved is None else SUCCEED, params).first()
            if ended is None:
                self._not_ours(s, job_id)
                return None
            job, ending = LeasedJob.of(ended), Ending.of(ended)
            # A given password is no longer needed. A generated one is shown once if it was
            # not mailed, or if the job failed after the user got it (else nobody would know it).
            user_made = any(
                isinstance(out, dict) and out.get("primaryEmail") and out.get("created")
                for out in (job.checkpoint or {}).values()
            )
            if ending.has_secrets:
                settle_secrets(
                    conn,
                    job_id,
                    given=get_operation(job.operation).secret_fields,
                    keep_generated=state == JobState.SUCCEEDED or user_made,
                    reveal_generated=state != JobState.SUCCEEDED,
                )
            if not one_trip:
                insert_lines(conn, job_id, lines)
            event = "job.succeeded" if state == JobState.SUCCEEDED else "job.failed"
            failed = state == JobState.FAILED
            delivery = self._announce(
                s, ended, ending.tells_billing, event, failed=failed, instance_name=instance_name
            )
            released = waiting_for(conn, job_id) if ending.has_waiting else []
            freed = self._claim_freed(s, job.distributor_id, held=ending.has_held)
            return _Ended(delivery, released, freed)

        if one_trip:
            with self._session() as s:
                done = end(s)
        else:  # SQLite: in a group's transaction (bss.write_group)
            done = self._grouped_session(end)
        if done is None:
            return None
        delivery, released, freed = done.delivery, done.released, done.freed
        self._send([delivery])
        for next_id in released:  # the jobs behind this one look again
            self.resend(next_id, 0)
        self._send_freed(freed)
        return state

    def _announce(
        self,
        s: Session,
        ended: Any,
        tells_billing: bool,
        event: str,
        *,
        failed: bool,
        instance_name: str | None,
    ) -> str | None:
        """Tell billing (when the distributor has a webhook) and, for a failed job, the
        distributor's digest of failed jobs; the webhook delivery to send after commit. `ended`:
        the job's row as the end's UPDATE read it back (rows.FINISH)."""
        if not failed and not tells_billing:
            return None  # nothing to tell: no row read, no payload built
        if not failed:  # the event is built from the row the end wrote: nothing read again
            shown = cast(Job, ended)
            return job_event(s, self.settings, shown, event, instance_name=instance_name)
        job = s.get(Job, ended.id)
        assert job is not None
        job_failed(s, job)  # counted in the distributor's digest, not one mail each
        return job_event(s, self.settings, job, event, instance_name=instance_name)

    def _not_ours(self, s: Session, job_id: str) -> None:
        job = s.get(Job, job_id)
        log.warning("job %s: no longer ours (%s)", job_id, job.state if job else "gone")

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
            self._write_pending(s, job_id)
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
                freed = self._claim_freed(s, job.distributor_id)
        if final:
            return self._finish(
                job_id, worker, JobState.FAILED, distributor_id=job.distributor_id, error=error
            )
        self.resend(job_id, int(delay * 1000))
        self._send_freed(freed)
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
            self._write_pending(s, job_id)
            add_event(
                s,
                job_id,
                "state",
                f"Waiting for its instance: {why}",
                state=JobState.WAITING_REAUTH,
            )
            deliveries.append(job_event(s, self.settings, job, "job.waiting_reauth"))
            freed = self._claim_freed(s, job.distributor_id)
        self._send(deliveries)
        self._send_freed(freed)
        return JobState.WAITING_REAUTH

    def _mark_needs_reauth(self, instance_id: int | None, exc: GoogleError) -> None:
        with self._session() as s:
            delivery = mark_needs_reauth(s, instance_id, exc)
        self._send([delivery])
