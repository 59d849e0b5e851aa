"""Which of a distributor's held jobs go next, and claiming them: the statements the fair share
(bss.jobs.fairness) runs at every release, built once.

Each reads what the share can send, not the backlog: a billing system's import may hold tens
of thousands of jobs, and a release runs whenever one of the distributor's jobs ends.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Select, bindparam, func, select, union_all, update

from bss.jobs.rows import INSTANCE, JOB, ROWS

_OF_DISTRIBUTOR = JOB.c.distributor_id == bindparam("distributor_id")
# The distributor's jobs in flight (from the partial index of jobs in flight), read with its
# held jobs in one statement, so that releasers at the same moment see one state.
_BUSY = (
    select(func.count()).select_from(JOB).where(_OF_DISTRIBUTOR, ROWS.in_flight).scalar_subquery()
)
# One instance: its oldest first (the index gives them in order).
OLDEST_HELD = (
    select(JOB.c.id, _BUSY)
    .where(_OF_DISTRIBUTOR, ROWS.held)
    .order_by(JOB.c.created_at, JOB.c.id)
    .limit(bindparam("most"))
)


# Up to this many instances, each one's oldest are read apart (a UNION ALL of one bounded read
# each; SQLite allows 500 parts to a compound statement). A distributor with more is numbered
# by a window over all its held jobs, as every release once was: its cost is the backlog's.
MOST_READ_APART = 64
_IN_TURN = (
    select(
        JOB.c.id.label("id"),
        JOB.c.instance_id.label("instance_id"),
        JOB.c.created_at.label("created_at"),
        func.row_number()
        .over(partition_by=JOB.c.instance_id, order_by=(JOB.c.created_at, JOB.c.id))
        .label("turn"),
    )
    .where(_OF_DISTRIBUTOR, ROWS.held)
    .subquery()
)
HELD_IN_TURN = (
    select(_IN_TURN.c.id, _BUSY)
    .order_by(_IN_TURN.c.turn, _IN_TURN.c.created_at, _IN_TURN.c.id)
    .limit(bindparam("most"))
)


@functools.lru_cache(maxsize=MOST_READ_APART)
def held_of_each(instances: int) -> Select[Any]:
    """Several instances: the oldest `most` held jobs of each of the distributor's first
    `instances` instances (by id), each read from the index of its instance's queued jobs, with
    the jobs in flight; each instance's in its order. Built once per number of instances."""
    of_each = []
    for n in range(instances):
        nth = (
            select(INSTANCE.c.id)
            .where(INSTANCE.c.distributor_id == bindparam("distributor_id"))
            .order_by(INSTANCE.c.id)
            .limit(1)
            .offset(n)
            .scalar_subquery()
        )
        oldest = (
            select(JOB.c.id, JOB.c.instance_id, JOB.c.created_at)
            .where(JOB.c.instance_id == nth, ROWS.held)
            .order_by(JOB.c.created_at, JOB.c.id)
            .limit(bindparam("most"))
            .subquery()
        )
        of_each.append(select(oldest.c.id, oldest.c.instance_id, oldest.c.created_at))
    held = union_all(*of_each).subquery()
    return select(held.c.id, _BUSY, held.c.instance_id, held.c.created_at)


def next_turns(
    conn: Any, distributor_id: int, *, instances: int, most: int
) -> tuple[list[str], int]:
    """Up to `most` of the distributor's held jobs in their turn's order (with several
    instances: each one's oldest, then each one's second oldest, ..., the older first within a
    turn), and its jobs in flight."""
    params = {"distributor_id": distributor_id, "most": most}
    apart = 1 < instances <= MOST_READ_APART
    query = held_of_each(instances) if apart else OLDEST_HELD if instances <= 1 else HELD_IN_TURN
    rows = conn.execute(query, params).all()
    if not rows:
        return [], 0
    if not apart:  # in their turn's order already
        return [r.id for r in rows], rows[0][1]
    turn: dict[int, int] = {}
    ranked = []
    for r in rows:  # each instance's rows come in its order
        turn[r.instance_id] = turn.get(r.instance_id, 0) + 1
        ranked.append((turn[r.instance_id], r.created_at, r.id))
    ranked.sort()
    return [job_id for _turn, _at, job_id in ranked[:most]], rows[0][1]


def _claim_of(ids: Any) -> Any:
    """Mark held jobs sent; only those still held (another releaser may have won). Rows another
    transaction has locked are skipped, not waited for: two releasers claiming the same jobs in
    another order would each wait for the other (PostgreSQL ends one of them as a deadlock);
    a job skipped is either claimed by the other releaser or still held for the next release.
    (SQLite has one writer at a time and no row locks: FOR UPDATE is not rendered there.)"""
    still_held = select(JOB.c.id).where(JOB.c.id.in_(ids), ROWS.held)
    return (
        update(JOB)
        .where(JOB.c.id.in_(still_held.with_for_update(skip_locked=True).scalar_subquery()))
        .values(enqueued_at=bindparam("at"), wait_reason=None)
        .returning(JOB.c.id)
    )


CLAIM = _claim_of(bindparam("ids", expanding=True))
# The same for one job, the usual case (one job ended, one slot free): an expanding list is
# rendered into the statement's text anew at every run.
CLAIM_ONE = _claim_of([bindparam("job_id")])
