"""The statements of an API order's acceptance (bss.jobs.intake), built once: the counts it
reads, the INSERT that decides sent or held as it writes, and on PostgreSQL that INSERT with its
timeline lines in one statement (bss.jobs.one_trip)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    String,
    Table,
    and_,
    bindparam,
    case,
    column,
    exists,
    insert,
    literal,
    null,
    or_,
    select,
)

from bss.jobs.fairness import HELD_COUNT, IN_FLIGHT_COUNT, JOB, OF_DISTRIBUTOR, ROWS
from bss.jobs.one_trip import recordset
from bss.models import Instance, JobEvent, JobSecret

EVENT: Table = JobEvent.__table__  # type: ignore[attr-defined]
SECRET: Table = JobSecret.__table__  # type: ignore[attr-defined]
INSTANCE: Table = Instance.__table__  # type: ignore[attr-defined]

# The instance named in the order, the distributor's jobs in flight and its held jobs (counted
# so that an order costs the same behind ten held jobs or a million: bss.jobs.fairness).
BEFORE = select(
    select(INSTANCE.c.id)
    .where(
        INSTANCE.c.distributor_id == bindparam("distributor"),
        INSTANCE.c.name == bindparam("instance"),
    )
    .scalar_subquery()
    .label("instance_id"),
    IN_FLIGHT_COUNT.scalar_subquery().label("busy"),
    HELD_COUNT.scalar_subquery().label("held"),
)


def _insert(limited: bool) -> Any:
    """The job's INSERT: sent (enqueued_at now) when nothing of its distributor is held and its
    jobs in flight leave room, read by the statement itself; else held with the reason given."""
    goes = ~exists().where(OF_DISTRIBUTOR, ROWS.held)
    if limited:
        goes = and_(goes, IN_FLIGHT_COUNT.scalar_subquery() < bindparam("share"))
    now = bindparam("now", type_=JOB.c.enqueued_at.type)
    reason = bindparam("reason", type_=JOB.c.wait_reason.type)
    return (
        insert(JOB)
        .values(
            enqueued_at=case((goes, now), else_=null()),
            wait_reason=case((goes, null()), else_=reason),
        )
        .returning(JOB.c.enqueued_at)
    )


INSERT_WITHIN_SHARE = _insert(limited=True)
INSERT_UNLIMITED = _insert(limited=False)
# The columns of the job's row an order gives (the INSERT decides enqueued_at and wait_reason).
_ROW = (
    *("id", "distributor_id", "instance_id", "operation", "params", "external_ref"),
    *("customer_domain", "idempotency_key", "request_hash", "state", "attempts", "checkpoint"),
    *("created_at", "updated_at"),
)


def _insert_with_lines(limited: bool) -> Any:
    """On PostgreSQL, the job's INSERT and its timeline lines in one statement
    (bss.jobs.one_trip): the line saying why it is held only when the INSERT held it."""
    row = {name: bindparam(name, type_=JOB.c[name].type) for name in _ROW}
    accepted = _insert(limited).values(row).cte("accepted")
    line = recordset(column("message", String), column("data", JSON), column("held", Boolean))
    lines = insert(EVENT).from_select(
        ["job_id", "at", "kind", "message", "data"],
        select(*[row["id"], row["created_at"], literal("state"), line.c.message, line.c.data])
        .select_from(accepted)
        .join(line, or_(~line.c.held, accepted.c.enqueued_at.is_(None))),
    )
    return select(accepted.c.enqueued_at).add_cte(lines.cte("accepted_lines"))


ACCEPT_WITHIN_SHARE = _insert_with_lines(limited=True)
ACCEPT_UNLIMITED = _insert_with_lines(limited=False)
INSERT_LINES = insert(EVENT)
INSERT_SECRETS = insert(SECRET)
