"""An order behind a large backlog of its distributor's held jobs (a billing system's import):
counted only as far as its reason needs, the jobs in flight read from their partial index, so
that accepting it costs the same as behind a few. Real SQLite (or PostgreSQL), no broker."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select

from bss.db import get_engine, session_scope
from bss.jobs.fairness import HELD_COUNTED, IN_FLIGHT_COUNT, load
from bss.jobs.rows import JOB
from bss.models import new_id, utcnow
from tests.jobs.test_intake import accept, cap, order, row, timeline
from tests.support.samples import submit


def test_an_order_behind_more_held_jobs_than_are_counted_says_more_than(settings, tenant):
    # Given a distributor that runs 2 at a time, 2 in flight, and a backlog past what is counted
    cap(settings, tenant, 2)
    for n in range(2):
        accept(settings, tenant, order(n), send=lambda _j: None)
    template = submit(settings, tenant, params=order(9))  # written, never sent: held
    with get_engine(settings.database_url).begin() as conn:
        first = conn.execute(select(JOB).where(JOB.c.id == template)).mappings().one()
        start = utcnow()
        conn.execute(
            insert(JOB),
            [
                {
                    **first,
                    "id": new_id("job"),
                    "created_at": start + timedelta(microseconds=n),
                    "idempotency_key": None,
                    "external_ref": None,
                }
                for n in range(HELD_COUNTED + 5)
            ],
        )
    with session_scope(settings.database_url) as s:
        assert load(s, tenant.id) == (2, HELD_COUNTED + 2)  # the held ones counted no further
    # When one more order comes
    accepted = accept(settings, tenant, order(10))
    # Then it is held behind them, saying so in words it can stand by
    why = "Queued behind more than 1,000 earlier jobs of this distributor; it runs 2 at a time."
    assert accepted.job.wait_reason == row(settings, accepted.job.id).wait_reason == why
    assert timeline(settings, accepted.job.id) == ["Accepted", why]


def test_the_jobs_in_flight_are_counted_from_their_partial_index(settings, tenant):
    if not settings.database_url.startswith("sqlite"):
        return  # PostgreSQL's choice depends on its statistics; SQLite's on the query's shape
    stmt = IN_FLIGHT_COUNT.compile(dialect=get_engine(settings.database_url).dialect)
    with get_engine(settings.database_url).connect() as conn:
        plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {stmt}", (tenant.id,))
        details = " ".join(r[-1] for r in plan)
    assert "ix_job_in_flight" in details, details
