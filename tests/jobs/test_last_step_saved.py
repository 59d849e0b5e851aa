"""A job's last step is saved with its outcome, in one transaction, and the timeline still tells
each step. When the outcome is not written, the last step is saved alone; when the database
takes nothing, the step runs again the way it does after a lost answer, checking Google first.
Either way nothing is done twice and the job reports what it did. In process, against the
sandbox over HTTP; the database's failures are injected at the driver."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, update
from sqlmodel import col, select

from bss.crypto import vault_from_settings
from bss.db import get_engine, session_scope
from bss.gateway import Gateway
from bss.jobs import JobRunner
from bss.jobs.rows import JOB
from bss.models import Job, JobEvent, JobState, utcnow
from tests.gateway.test_gateway_pacing import Google
from tests.jobs.test_intake import order
from tests.support.samples import submit


@pytest.fixture
def google(sandbox: str) -> Google:
    return Google(sandbox)


def runner(settings, sandbox: str, google: Google) -> JobRunner:
    at_sandbox = settings.model_copy(
        update={"google_reseller_root": sandbox + "/", "google_http_timeout": 10}
    )

    def gateway(**kw):  # the instance's token is the sandbox reseller's (the edge)
        return Gateway(**{**kw, "credentials": google.credentials})

    return JobRunner(
        settings=at_sandbox,
        vault=vault_from_settings(settings),
        resend=lambda _job_id, _delay: None,
        gateway_factory=gateway,
    )


def timeline(settings, job_id: str) -> list[tuple[str, str]]:
    with session_scope(settings.database_url) as s:
        rows = s.exec(
            select(JobEvent).where(JobEvent.job_id == job_id).order_by(col(JobEvent.id))
        ).all()
        return [(e.kind, e.message) for e in rows]


def test_each_step_is_on_the_timeline_and_the_last_is_saved_with_the_outcome(
    settings, sandbox, google, tenant
):
    params = order(1)
    job_id = submit(settings, tenant, params=params)
    assert runner(settings, sandbox, google).run(job_id, worker="w1") == JobState.SUCCEEDED
    with session_scope(settings.database_url) as s:
        job = s.get(Job, job_id)
        assert job.state == JobState.SUCCEEDED and job.result["created"] is True
        assert set(job.checkpoint) >= {"customer_check", "customer"}
        assert job.checkpoint["customer"]["customerId"] == job.result["customer_id"]
    lines = timeline(settings, job_id)
    assert [m for k, m in lines if k in ("step", "state")][-3:] == [
        "Step customer_check done",
        "Step customer done",
        "Succeeded",
    ]
    # The insert's call is told before the step it belongs to
    kinds = [k for k, _m in lines]
    assert kinds.index("google_call", kinds.index("step")) < len(kinds) - 2


def reseller_calls(google: Google) -> list[str]:
    return [c["method"] for c in google.calls() if c["client_id"] == google.client_id]


@pytest.mark.parametrize("database_away", [False, True], ids=["outcome-fails", "database-away"])
def test_an_outcome_not_written_never_inserts_twice_and_reports_created(
    settings, sandbox, google, tenant, database_away
):
    params = order(2)
    job_id = submit(settings, tenant, params=params)
    engine = get_engine(settings.database_url)
    failed: list[str] = []

    def lose_the_outcome(_conn, _cursor, statement, _params, _context, _many):
        outcome = "UPDATE job SET state" in statement and "finished_at" in statement
        # The database fails at the outcome, and, when it is away, at every write after it
        if (outcome and not failed) or (database_away and failed and "UPDATE job" in statement):
            failed.append(statement)
            raise ConnectionError("the database went away")

    event.listen(engine, "before_cursor_execute", lose_the_outcome)
    try:
        # Given the customer was inserted at Google, and the job's outcome was then not written
        with pytest.raises(Exception, match="the database went away"):
            runner(settings, sandbox, google).run(job_id, worker="w1")
    finally:
        event.remove(engine, "before_cursor_execute", lose_the_outcome)
    assert len(failed) == (2 if database_away else 1)
    assert reseller_calls(google) == ["reseller.customers.get", "reseller.customers.insert"]
    with engine.begin() as conn:  # its worker is gone: the lease lapses
        conn.execute(
            update(JOB)
            .where(JOB.c.id == job_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    # When another worker takes the job over
    assert runner(settings, sandbox, google).run(job_id, worker="w2") == JobState.SUCCEEDED
    # Then Google got one insert, and the job says it created the customer
    with session_scope(settings.database_url) as s:
        job = s.get(Job, job_id)
        assert job.result["created"] is True and job.attempts == 2
    assert ("step", "Step customer done") in timeline(settings, job_id)
    again = reseller_calls(google)[2:]
    if database_away:  # the step ran again, and looked before inserting
        assert again == ["reseller.customers.get"]
    else:  # the step was saved alone when the outcome failed: nothing asked of Google again
        assert again == []
