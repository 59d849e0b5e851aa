"""Finding jobs: the billing API's listing and the dashboard's search, keyset-paged.

list_jobs serves the billing API (one distributor, the API's filters); the dashboard also
filters by distributor, customer domain and a search term, and counts and walks the same
filtered set for bulk actions. Both listings share the cursors, so they page alike.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import NamedTuple, Protocol, TypeVar

from pydantic import BaseModel
from sqlalchemy import false, func, or_, union_all
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select, SelectOfScalar

from bss.accounts import ALL
from bss.errors import ValidationFailed
from bss.models import Job

# A listing's query: whole jobs (a page) or a few of their columns (a bulk action's batch).
_Keys = Select[str, int, str, datetime]  # a JobKey's columns
_Query = TypeVar("_Query", SelectOfScalar[Job], _Keys)


class JobFilters(BaseModel):
    """Filters of a job listing; every one is optional."""

    state: str | None = None
    operation: str | None = None
    instance_id: int | None = None
    external_ref: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


class _Positioned(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...


def encode_cursor(job: _Positioned) -> str:
    """An opaque position after `job` (a Job, or a bulk action's JobKey) in a newest-first
    listing."""
    raw = f"{job.created_at.isoformat()}|{job.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) a cursor stands for, or ValidationFailed."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, job_id = raw.split("|", 1)
        return datetime.fromisoformat(when), job_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed(
            "The cursor is not one this API gave out.",
            details=[{"field": "cursor", "problem": "invalid; use next_cursor from a listing"}],
        ) from None


class JobSearch(JobFilters):
    """The dashboard's job filters: the API's, plus distributor, customer domain and a search
    term matched exactly against job id, external ref and idempotency key."""

    distributor_id: int | None = None
    customer_domain: str | None = None
    q: str | None = None


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


def _after(query: _Query, cursor: str | None) -> _Query:
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


class JobKey(NamedTuple):
    """A job in a bulk action's batch: what acting on it needs, not its params, result or
    error (a batch is hundreds of jobs)."""

    id: str
    distributor_id: int
    state: str
    created_at: datetime


def _newest_keys(
    scope: int | None,
    search: JobSearch,
    where: Sequence[ColumnElement[bool]],
    cursor: str | None,
    size: int,
) -> _Keys:
    query = (
        select(col(Job.id), col(Job.distributor_id), col(Job.state), col(Job.created_at))
        .where(*_conditions(scope, search), *where)
        .order_by(col(Job.created_at).desc(), col(Job.id).desc())
    )
    return _after(query, cursor).limit(size)


def _batch_query(
    scope: int | None, search: JobSearch, states: Sequence[str], cursor: str | None, size: int
) -> _Keys:
    """The next batch: the newest `size` of each state's own newest `size`. With "state IN
    (...)" no index gives the order, so the database walks one that does (operation, instance,
    ...) past every job in another state; one state at a time, each walks its (state, ...)
    index from the cursor on, and the batch is the same."""
    if len(states) < 2:
        where = [col(Job.state).in_(list(states))] if states else []
        return _newest_keys(scope, search, where, cursor, size)
    newest = union_all(
        *(
            select(_newest_keys(scope, search, [col(Job.state) == s], cursor, size).subquery())
            for s in states
        )
    ).subquery()
    return select(*newest.c).order_by(newest.c.created_at.desc(), newest.c.id.desc()).limit(size)


def job_batches(
    session: Session,
    *,
    scope: int | None,
    search: JobSearch,
    states: Sequence[str],
    size: int = 500,
) -> Iterator[list[JobKey]]:
    """The matching jobs in `states`, a batch at a time, newest first (keyset, so a batch acted
    upon and committed does not shift the next one)."""
    cursor = None
    while True:
        query = _batch_query(scope, search, states, cursor, size)
        batch = [JobKey(*row) for row in session.exec(query).all()]
        if not batch:
            return
        yield batch
        if len(batch) < size:
            return
        cursor = encode_cursor(batch[-1])


def list_jobs(
    session: Session,
    *,
    distributor_id: int | None,
    filters: JobFilters,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Job], str | None]:
    """The billing API's listing: a page of the distributor's jobs, newest first, and the cursor
    of the next page (the dashboard's search, with the API's filters only)."""
    search = JobSearch(**filters.model_dump())
    return page_of_jobs(session, scope=distributor_id, search=search, limit=limit, cursor=cursor)
