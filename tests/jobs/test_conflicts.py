"""A transaction the database rolls back for colliding with another is run again.

An order whose transaction the database rolls back for colliding with another (PostgreSQL's
deadlock_detected or serialization_failure) is written again, once: the billing system sees a
202, not a 503, and the job exists once, told once, sent once. When the collisions do not stop,
the answer is the 503 that says nothing was recorded, and nothing was. An operator's bulk retry
whose batch collides with a worker retries each job once. Real SQLite (or PostgreSQL); the
database's answer is injected at the driver."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg.errors
import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlmodel import col, select

from bss.db import CONFLICT_ATTEMPTS, get_engine, session_scope
from bss.jobs import Actor, JobSearch, bulk_retry
from bss.models import Job, JobEvent, utcnow
from tests.jobs.test_intake import order, timeline


@pytest.fixture
def collisions(settings) -> Iterator[list[str]]:
    """Make the database roll back the next N inserts of a job, or updates of jobs in bulk:
    append N reasons."""
    engine = get_engine(settings.database_url)
    pending: list[str] = []

    def collide(conn, cursor, statement, parameters, context, executemany):
        bulk = statement.startswith("UPDATE job SET") and " IN (" in statement
        # An order's INSERT, alone or in one statement with its lines (bss.jobs.one_trip)
        if pending and ("INSERT INTO job " in statement or bulk):
            reason = pending.pop(0)
            error = (
                psycopg.errors.DeadlockDetected("deadlock detected")
                if reason == "deadlock"
                else psycopg.errors.SerializationFailure("could not serialize access")
            )
            raise OperationalError(statement, parameters, error)

    event.listen(engine, "before_cursor_execute", collide)
    yield pending
    event.remove(engine, "before_cursor_execute", collide)


def jobs_for(settings, domain: str) -> list[Job]:
    with session_scope(settings.database_url) as s:
        return list(s.exec(select(Job).where(col(Job.customer_domain) == domain)).all())


@pytest.mark.parametrize("reasons", [["deadlock"], ["serialization", "deadlock"]])
def test_an_order_rolled_back_by_a_collision_is_accepted_once(api, settings, collisions, reasons):
    collisions.extend(reasons)
    params = order()
    resp = api({"instance": "main", "operation": "customer.create", "params": params})
    assert resp.status_code == 202, resp.json
    assert collisions == []  # each collision happened, and was written again
    [job] = jobs_for(settings, params["domain"])
    assert job.id == resp.json["id"]
    assert timeline(settings, job.id) == ["Accepted"]
    assert api.sent == [job.id]


def test_an_order_that_keeps_colliding_is_refused_and_nothing_is_recorded(
    api, settings, collisions
):
    collisions.extend(["deadlock"] * CONFLICT_ATTEMPTS)
    params = order()
    resp = api({"instance": "main", "operation": "customer.create", "params": params})
    assert resp.status_code == 503
    assert resp.headers["Retry-After"]
    assert "nothing was recorded" in resp.json["error"]["message"]
    assert collisions == []
    assert jobs_for(settings, params["domain"]) == []
    assert api.sent == []
    # The next try, with the database calm again, is accepted
    again = api({"instance": "main", "operation": "customer.create", "params": params})
    assert again.status_code == 202
    assert len(jobs_for(settings, params["domain"])) == 1


def test_a_bulk_retry_whose_batch_collides_retries_each_job_once(world, database_url, collisions):
    # Given distributor A's failed job, and the database rolling the operator's batch back once
    collisions.append("deadlock")
    sent: list[str] = []
    with session_scope(database_url) as s:
        outcome = bulk_retry(
            s,
            scope=world.a.distributor_id,
            search=JobSearch(instance_id=world.a.instance_id),
            as_of=utcnow(),
            actor=Actor("ops@example.com"),
            send=sent.append,
        )
    # Then the job was retried once, said once on its timeline, sent once
    assert collisions == []
    assert (outcome.changed, sent) == (1, [world.a.failed_job])
    with session_scope(database_url) as s:
        lines = s.exec(
            select(JobEvent.message).where(
                JobEvent.job_id == world.a.failed_job, col(JobEvent.message).contains("bulk")
            )
        ).all()
    assert lines == ["Retried by ops@example.com (bulk): queued again"]
