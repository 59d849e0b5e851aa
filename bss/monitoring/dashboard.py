"""What the operator dashboard charts: jobs finished per time bucket, jobs waiting per instance,
jobs running now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, cast, extract, func, literal_column, true
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from bss.accounts import ALL
from bss.models import Job, JobState, utcnow


@dataclass(frozen=True)
class Bucket:
    """Jobs finished in one interval of a chart."""

    start: datetime
    succeeded: int
    failed: int

    @property
    def failure_rate(self) -> float | None:
        total = self.succeeded + self.failed
        return self.failed / total if total else None


def _epoch(column: Any, dialect: str) -> ColumnElement[int]:
    if dialect == "sqlite":
        return cast(func.strftime("%s", column), Integer)
    # floor: a cast alone rounds, which would move a job into the next interval
    return cast(func.floor(extract("epoch", column)), Integer)


def finished_buckets(
    session: Session, *, scope: int | None, window: timedelta, buckets: int
) -> list[Bucket]:
    """Jobs succeeded and failed per interval over the last `window`, oldest first (grouped in
    the database: a busy day is many rows)."""
    now = utcnow()
    width = int(window.total_seconds()) // buckets
    end = int(now.timestamp()) // width * width + width
    start = end - width * buckets
    since = datetime.fromtimestamp(start, now.tzinfo)
    dialect = session.get_bind().dialect.name
    # Literal numbers (computed here, never user input): with bound parameters PostgreSQL sees
    # the SELECT's and the GROUP BY's expressions as different ones.
    # `//`: SQL integer division (SQLAlchemy's `/` divides as floats: one group per job).
    slot = (_epoch(col(Job.finished_at), dialect) - literal_column(str(start))) // literal_column(
        str(width)
    )
    query = (
        select(slot, col(Job.state), func.count())
        .where(
            col(Job.finished_at) >= since,
            col(Job.state).in_([JobState.SUCCEEDED, JobState.FAILED]),
            # "+ 0": not a condition to choose an index by. SQLite would take the (distributor,
            # state) one and read every job the distributor ever finished; the (state,
            # finished_at, distributor_id) index answers the window, distributor included.
            col(Job.distributor_id) + 0 == scope if scope is not ALL else true(),
        )
        .group_by(slot, col(Job.state))
    )
    counts: dict[tuple[int, str], int] = {}
    for index, state, n in session.exec(query).all():
        counts[(int(index), state)] = counts.get((int(index), state), 0) + int(n)
    return [
        Bucket(
            start=datetime.fromtimestamp(start + i * width, now.tzinfo),
            succeeded=counts.get((i, JobState.SUCCEEDED), 0),
            failed=counts.get((i, JobState.FAILED), 0),
        )
        for i in range(buckets)
    ]


WAITING = (
    JobState.QUEUED,
    JobState.WAITING,
    JobState.WAITING_QUOTA,
    JobState.RETRYING,
    JobState.WAITING_REAUTH,
)


def waiting_by_instance(session: Session, *, scope: int | None) -> dict[int, dict[str, int]]:
    """Jobs not yet run per instance: {instance_id: {state: count}} for queued, waiting (behind
    an earlier job on the same customer), retrying and waiting_reauth."""
    out: dict[int, dict[str, int]] = {}
    # One query per state: each is a range of the (state, ...) index, where a single IN query
    # may make the planner walk a whole index to save itself the grouping.
    for state in WAITING:
        query = (
            select(col(Job.instance_id), func.count())
            .where(col(Job.state) == state)
            .group_by(col(Job.instance_id))
        )
        if scope is not ALL:
            query = query.where(col(Job.distributor_id) == scope)
        for instance_id, n in session.exec(query).all():
            out.setdefault(instance_id, {})[state] = int(n)
    return out


def running_jobs(session: Session, *, scope: int | None, limit: int = 200) -> list[Job]:
    """Jobs a worker holds right now (their lease_owner is "host:pid:thread")."""
    query = select(Job).where(col(Job.state) == JobState.RUNNING)
    if scope is not ALL:
        query = query.where(col(Job.distributor_id) == scope)
    return list(session.exec(query.order_by(col(Job.started_at)).limit(limit)).all())
