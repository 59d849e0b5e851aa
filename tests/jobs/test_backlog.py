"""An order behind a large backlog of its distributor's held jobs (a billing system's import):
counted only as far as its reason needs, the jobs in flight read from their partial index, so
that accepting it costs the same as behind a few. Real SQLite (or PostgreSQL), no broker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from bss.db import get_engine, session_scope
from bss.jobs.fairness import HELD_COUNTED, IN_FLIGHT_COUNT, Terms, _next_turns, load
from bss.jobs.rows import JOB
from bss.models import new_id, utcnow
from tests.jobs.test_customer_line import vm_steps
from tests.jobs.test_fairness import add_instance, record
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


def _held_copies(settings, template_id: str, count: int) -> None:
    """`count` more held jobs like the template, accepted after it (a billing import)."""
    with get_engine(settings.database_url).begin() as conn:
        first = conn.execute(select(JOB).where(JOB.c.id == template_id)).mappings().one()
        conn.execute(
            insert(JOB),
            [
                {
                    **first,
                    "id": new_id("job"),
                    "created_at": first["created_at"] + timedelta(microseconds=n + 1),
                    "idempotency_key": None,
                    "external_ref": None,
                }
                for n in range(count)
            ],
        )


def test_a_release_across_instances_reads_what_the_share_sends_not_the_backlog(settings, tenant):
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("counts SQLite's own steps; PostgreSQL's plan depends on its statistics")
    # Given a distributor of two instances that runs 2 at a time, with a few held jobs on each
    add_instance(settings, tenant, "second")
    cap(settings, tenant, 2)
    main = [record(settings, tenant, n) for n in range(3)]
    second = [record(settings, tenant, n, instance="second") for n in range(3)]
    terms = Terms(share=2, instances=2)

    def turns(s):  # what a release would send
        return _next_turns(s, tenant.id, terms)

    with session_scope(settings.database_url) as s:
        assert turns(s) == ([main[0], second[0]], 0)
    few = vm_steps(settings, turns)
    # When an import holds 3,000 more on the first instance
    _held_copies(settings, main[-1], 3000)
    # Then a release still sends the instances in turn, and reads no more to find them
    with session_scope(settings.database_url) as s:
        assert turns(s) == ([main[0], second[0]], 0)
    many = vm_steps(settings, turns)
    assert many <= few * 1.2, (few, many)
