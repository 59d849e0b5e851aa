"""A job's writes and their timeline lines (bss.jobs.one_trip): on PostgreSQL each write goes
with its lines in one statement, and a write that stands alone without a BEGIN and a COMMIT
around it; on either database the lines are written only with the write they belong to. In
process, against the sandbox over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, update

import bss.jobs.fairness
from bss.db import get_engine
from bss.jobs.rows import JOB
from bss.jobs.runner import LeaseLost
from bss.models import JobState
from tests.gateway.test_gateway_pacing import Google
from tests.jobs.test_intake import order
from tests.jobs.test_last_step_saved import runner, timeline
from tests.support.samples import submit


@pytest.fixture
def google(sandbox: str) -> Google:
    return Google(sandbox)


class RoundTrips:
    """What a connection of the engine sends the server: each statement (an executemany's rows
    go together), and a BEGIN and a COMMIT or ROLLBACK for each transaction not in autocommit."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.transactions = 0

    @property
    def total(self) -> int:
        return len(self.statements) + 2 * self.transactions

    def statement(self, _conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        self.statements.append(statement)

    def begin(self, conn: Any) -> None:
        if not conn.connection.driver_connection.autocommit:
            self.transactions += 1


@pytest.fixture
def round_trips(settings) -> Iterator[RoundTrips]:
    engine = get_engine(settings.database_url)
    counted = RoundTrips()
    event.listen(engine, "before_cursor_execute", counted.statement)
    event.listen(engine, "begin", counted.begin)
    yield counted
    event.remove(engine, "before_cursor_execute", counted.statement)
    event.remove(engine, "begin", counted.begin)


def test_a_job_on_postgresql_takes_few_round_trips_and_tells_every_step(
    settings, sandbox, google, tenant, round_trips
):
    if get_engine(settings.database_url).dialect.name != "postgresql":
        pytest.skip("round trips to a database server: set BSS_TEST_DATABASE_URL")
    jobs = runner(settings, sandbox, google)
    first, job_id = (submit(settings, tenant, params=order(n)) for n in (1, 2))
    assert jobs.run(first, worker="w1") == JobState.SUCCEEDED  # the process has its instance
    round_trips.statements.clear()
    round_trips.transactions = 0
    assert jobs.run(job_id, worker="w1") == JobState.SUCCEEDED
    # The look, the lease with its line, the first step's checkpoint with its lines, and the
    # end with its lines in its transaction (where a held job it releases would be claimed):
    # six round trips, where the statements of bss.jobs.rows alone took thirteen.
    assert round_trips.total <= 6, [s[:60] for s in round_trips.statements]
    assert round_trips.transactions <= 1
    lines = timeline(settings, job_id)
    assert lines[1] == ("state", "Attempt 1 started by w1")
    assert [m for k, m in lines if k in ("step", "state")][-3:] == [
        "Step customer_check done",
        "Step customer done",
        "Succeeded",
    ]
    assert sum(1 for k, _m in lines if k == "google_call") == 2


def test_a_checkpoint_of_a_job_no_longer_ours_writes_no_line(settings, sandbox, google, tenant):
    job_id = submit(settings, tenant, params=order(1))
    jobs = runner(settings, sandbox, google)
    leased = jobs._lease(job_id, "w1")
    assert isinstance(leased, tuple)
    before = timeline(settings, job_id)
    with get_engine(settings.database_url).begin() as conn:  # another worker took it over
        conn.execute(update(JOB).where(JOB.c.id == job_id).values(lease_owner="w2"))
    jobs._timeline.pending = [("note", "looked at Google", {})]
    with pytest.raises(LeaseLost):
        jobs._checkpoint(job_id, "w1", {"customer_check": {"exists": False}}, "customer_check")
    assert timeline(settings, job_id) == before
    # Nor does its end: the job stays the other worker's, its timeline as it was
    assert jobs._finish(job_id, "w1", JobState.SUCCEEDED, distributor_id=tenant.id) is None
    assert timeline(settings, job_id) == before


def test_an_order_on_postgresql_takes_three_statements_and_no_transaction(
    api, settings, round_trips, monkeypatch
):
    if get_engine(settings.database_url).dialect.name != "postgresql":
        pytest.skip("round trips to a database server: set BSS_TEST_DATABASE_URL")
    monkeypatch.setattr(bss.jobs.fairness, "TERMS_TTL_SECONDS", 3600.0)
    body = {"instance": "main", "operation": "customer.create"}
    first = api({**body, "params": order(1)})  # the key's first use is written down
    assert first.status_code == 202
    round_trips.statements.clear()
    round_trips.transactions = 0
    resp = api({**body, "params": order(2)})
    assert resp.status_code == 202 and resp.json["state"] == "queued"
    # The key, the counts, and the INSERT with its line: no BEGIN, no COMMIT
    assert (len(round_trips.statements), round_trips.transactions) == (3, 0), [
        s[:60] for s in round_trips.statements
    ]
    assert timeline(settings, resp.json["id"]) == [("state", "Accepted")]
    assert api.sent == [first.json["id"], resp.json["id"]]
