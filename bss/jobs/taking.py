"""Taking a job to run: the lease's look (is it due, is it ours, must it wait behind another job
on the same customer), the lease itself with its timeline line, and the job's instance."""

from __future__ import annotations

import contextlib
from typing import Any

from bss.db import one_trip_engine, session_scope
from bss.jobs.one_trip import LEASE_AND_LINE, lines_params
from bss.jobs.ordering import FINAL, wait_behind
from bss.jobs.outcomes import JobOutcomes
from bss.jobs.rows import (
    INSTANCE_SEEN,
    LAST_TURN,
    LEASE,
    LOOK,
    RUNNABLE,
    SET_ASIDE,
    LeasedJob,
    Line,
    insert_lines,
    lease_params,
)
from bss.models import Instance, Job, JobState

# What a grouped lease's look says of a job that may have to wait behind another one.
_MAY_WAIT = "may wait"


def _may_wait(look: Any) -> bool:
    """Whether the look found a job that may have to wait behind an earlier one on its customer
    (the lease's slow path, which looks again and decides)."""
    return bool(look.state in RUNNABLE and look.customer_domain and look.blocker_id)


def _set_aside_last(s: Any, job_id: str) -> bool:
    """Whether the job's last run ended by setting it aside (see JobOutcomes._set_aside), so
    that this run goes on with its attempt (a run that died after resuming does not)."""
    last = s.execute(LAST_TURN, {"job_id": job_id}).first()
    return bool(last and last.data.get("set_aside"))


class InstancesSeen:
    """The instances this process loaded to run jobs, each kept for as long as the columns a
    run reads of it (rows.INSTANCE_SEEN, read by every lease's look) stay the same: then the
    lease does not load it again. Shared by the process's threads, which only read them."""

    MOST = 1000

    def __init__(self) -> None:
        self._kept: dict[int, tuple[tuple[Any, ...], Instance]] = {}

    def kept(self, look: Any) -> Instance | None:
        """The instance of the job `look` read, if kept and unchanged since."""
        kept = self._kept.get(look.instance_id)
        if kept is not None and kept[0] == tuple(getattr(look, name) for name in INSTANCE_SEEN):
            return kept[1]
        return None

    def get(self, s: Any, look: Any) -> Instance:
        kept = self.kept(look)
        if kept is not None:
            return kept
        seen = tuple(getattr(look, name) for name in INSTANCE_SEEN)
        instance = s.get(Instance, look.instance_id, populate_existing=True)
        assert instance is not None
        s.expunge(instance)  # read outside the session, by any thread
        if len(self._kept) >= self.MOST:
            self._kept.clear()
        self._kept[look.instance_id] = (seen, instance)
        return instance


class JobTaking(JobOutcomes):
    """The lease of a job's attempt; JobRunner runs the attempt, JobOutcomes ends it."""

    _instances: InstancesSeen

    def _wait_behind(self, s: Any, look: Any) -> bool | None:
        """Park the job behind an earlier one on the same customer, if there is one (None when
        there is none); in the caller's session, committed here. True when the job it waits for
        ended meanwhile: the caller sends the job again, out of its turn to write."""
        first_id = look.blocker_id if look.customer_domain else None  # read by the look
        job = s.get(Job, look.id) if first_id else None
        first = s.get(Job, first_id) if first_id else None
        if job is None or first is None:
            return None
        wait_behind(s, job, first)
        s.commit()
        # The job it waits for may have ended between the look and the commit: look again.
        first = s.get(Job, first_id, populate_existing=True)
        return first is None or first.state in FINAL

    def _lease(self, job_id: str, worker: str) -> tuple[LeasedJob, Instance] | str | None:
        """Take the job (a new attempt, or the attempt it was set aside in goes on) and say so
        on its timeline, in one transaction (on PostgreSQL, one statement after the look): the
        job and its instance; `waiting` when it must
        wait behind another job on the same customer; None when it is not ours to run now."""
        one_trip = one_trip_engine(self.settings.database_url)
        if one_trip is not None:  # PostgreSQL: the look, then the UPDATE with its line
            with one_trip.connect() as conn:
                look = conn.execute(LOOK, {"job_id": job_id}).first()
                if look is None:
                    return None
                if not _may_wait(look):
                    return self._take(None, conn, look, job_id, worker)
            # It may have to wait behind another job: the path below looks again and decides.
        else:  # SQLite: the look and the lease in a group's transaction (bss.write_group)

            def take(s: Any) -> tuple[LeasedJob, Instance] | str | None:
                conn = s.connection()
                look = conn.execute(LOOK, {"job_id": job_id}).first()
                if look is None:
                    return None
                if _may_wait(look):
                    return _MAY_WAIT  # the path below, which commits as it goes
                return self._take(s, conn, look, job_id, worker)

            taken = self._grouped_session(take)
            if taken is not _MAY_WAIT:
                return taken
        with self._session() as s:
            # Statements on the tables go to the session's connection: no ORM execution to
            # set up for them (the session is for the rare paths: waiting, a new instance).
            conn = s.connection()
            look = conn.execute(LOOK, {"job_id": job_id}).first()
            if look is None:
                return None
            behind = self._wait_behind(s, look) if look.state in RUNNABLE else None
            if behind is None:
                return self._take(s, conn, look, job_id, worker)
        if behind:  # what it waited for ended meanwhile: it looks again
            self.resend(job_id, 0)
        return JobState.WAITING

    def _take(
        self, s: Any, conn: Any, look: Any, job_id: str, worker: str
    ) -> tuple[LeasedJob, Instance] | None:
        """The lease's UPDATE and the attempt's line, in the lease's transaction (`s`, its
        session) or, on PostgreSQL (`s` None), in one statement (bss.jobs.one_trip)."""
        # A job set aside (paused after a slice, or waiting for quota) goes on with the
        # same attempt: a "resume" line, not a new attempt, on its timeline.
        set_aside = look.attempts > 0 and look.state in SET_ASIDE
        resumed = set_aside and _set_aside_last(conn, job_id)
        params = lease_params(
            job_id, look, worker, resumed=resumed, lease_s=self.settings.job_lease_seconds
        )
        # The lease takes the job only with the attempts it looked at: it knows the new count.
        attempt = look.attempts + params["new_attempt"]
        verb = "resumed" if resumed else "started"
        line: Line = (
            "resume" if resumed else "state",
            f"Attempt {attempt} {verb} by {worker}",
            {"state": JobState.RUNNING, "attempt": attempt},
        )
        if s is None:
            taken = conn.execute(
                LEASE_AND_LINE, {**params, **lines_params([line], params["now"])}
            ).first()
        else:
            taken = conn.execute(LEASE, params).first()
            if taken is not None:
                insert_lines(conn, job_id, [line])
        if taken is None:
            return None
        job = LeasedJob.of(taken)
        instance = self._instances.kept(look)
        if instance is None:
            url = self.settings.database_url
            with session_scope(url) if s is None else contextlib.nullcontext(s) as loading:
                instance = self._instances.get(loading, look)
        return job, instance
