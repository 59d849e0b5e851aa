"""What the operator dashboard reads: jobs by filter (keyset pages, counts, batches of ids),
finished jobs per time bucket, and jobs waiting per instance.

bss.jobs.list_jobs serves the billing API (one distributor, the API's filters, and it runs its
query itself); the dashboard also filters by distributor, customer domain and a search term, and
counts and walks the same filtered set for bulk actions. So the query is built here, once, and
used for all three; cursors are bss.jobs' own, so both listings page alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, cast, extract, false, func, literal_column, or_, true
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from bss.jobs import JobFilters, decode_cursor, encode_cursor
from bss.models import Job, JobState, utcnow


class JobSearch(JobFilters):
    """The dashboard's job filters: the API's, plus distributor, customer domain and a search
    term matched exactly against job id, external ref and idempotency key."""

    distributor_id: int | None = None
    customer_domain: str | None = None
    q: str | None = None


ALL = None  # a scope that sees every distributor


def _conditions(scope: int | None, search: JobSearch) -> list[ColumnElement[bool]]:
    """The WHERE clauses for `search`, within `scope` (a distributor id, or ALL)."""
    where: list[ColumnElement[bool]] = []
    if scope is not ALL:
        where.append(col(Job.distributor_id) == scope)
        if search.distributor_id is not None and search.distributor_id != scope:
            where.append(false())
    if search.distributor_id is not None:
        where.append(col(Job.distributor_id) == search.distributor_id)
    if search.instance_id is not None:
        where.append(col(Job.instance_id) == search.instance_id)
    if search.state:
        where.append(col(Job.state) == search.state)
    if search.operation:
        where.append(col(Job.operation) == search.operation)
    if search.customer_domain:
        where.append(col(Job.customer_domain) == search.customer_domain.strip().lower())
    if search.external_ref:
        where.append(col(Job.external_ref) == search.external_ref)
    if search.created_after:
        where.append(col(Job.created_at) >= search.created_after)
    if search.created_before:
        where.append(col(Job.created_at) < search.created_before)
    if search.q and search.q.strip():
        term = search.q.strip()
        where.append(
            or_(
                col(Job.id) == term,
                col(Job.external_ref) == term,
                col(Job.idempotency_key) == term,
            )
        )
    return where


def job_query(
    scope: int | None, search: JobSearch, *, states: Sequence[str] = ()
) -> SelectOfScalar[Job]:
    """Jobs matching `search` within `scope`, newest first (optionally only in `states`)."""
    query = select(Job).where(*_conditions(scope, search))
    if states:
        query = query.where(col(Job.state).in_(list(states)))
    return query.order_by(col(Job.created_at).desc(), col(Job.id).desc())


def _after(query: SelectOfScalar[Job], cursor: str | None) -> SelectOfScalar[Job]:
    if not cursor:
        return query
    when, last_id = decode_cursor(cursor)
    # "created_at <= when" first: a range the (filter, created_at, id) indexes answer in order,
    # so the next page reads 50 rows, not every older row (which an OR alone makes it sort).
    return query.where(
        col(Job.created_at) <= when,
        or_(col(Job.created_at) < when, col(Job.id) < last_id),
    )


def page_of_jobs(
    session: Session,
    *,
    scope: int | None,
    search: JobSearch,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Job], str | None]:
    """A page of matching jobs, newest first, and the cursor of the next page (keyset)."""
    rows = list(session.exec(_after(job_query(scope, search), cursor).limit(limit + 1)).all())
    following = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], following


def count_jobs(
    session: Session, *, scope: int | None, search: JobSearch, states: Sequence[str] = ()
) -> int:
    """How many jobs match (optionally only those in `states`)."""
    query = select(func.count()).select_from(Job).where(*_conditions(scope, search))
    if states:
        query = query.where(col(Job.state).in_(list(states)))
    return int(session.exec(query).one())


def job_batches(
    session: Session,
    *,
    scope: int | None,
    search: JobSearch,
    states: Sequence[str],
    size: int = 500,
) -> Iterator[list[Job]]:
    """The matching jobs in `states`, a batch at a time, newest first (keyset, so a batch acted
    upon and committed does not shift the next one)."""
    cursor = None
    while True:
        query = _after(job_query(scope, search, states=states), cursor).limit(size)
        batch = list(session.exec(query).all())
        if not batch:
            return
        yield batch
        if len(batch) < size:
            return
        cursor = encode_cursor(batch[-1])


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
            col(Job.distributor_id) == scope if scope is not ALL else true(),
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


WAITING = (JobState.QUEUED, JobState.RETRYING, JobState.WAITING_REAUTH)


def waiting_by_instance(session: Session, *, scope: int | None) -> dict[int, dict[str, int]]:
    """Jobs not yet run per instance: {instance_id: {state: count}} for queued, retrying and
    waiting_reauth."""
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
