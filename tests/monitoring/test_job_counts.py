"""Jobs by state as Prometheus scrapes them: exact at each scrape, without reading every ended
job each time. Real SQLite or PostgreSQL; SQLite's work counted in its virtual machine steps."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select, update

from bss import monitoring
from bss.db import get_engine, refresh_statistics, session_scope
from bss.jobs.rows import JOB
from bss.models import JobState, new_id, utcnow
from bss.monitoring import counts
from tests.jobs.test_customer_line import vm_steps
from tests.support.samples import submit

OP = "customer.create"


def _ended_long_ago(settings, template_id: str, count: int, state: JobState) -> list[str]:
    """`count` jobs like the template that ended two hours ago in `state`; their ids."""
    with get_engine(settings.database_url).begin() as conn:
        first = conn.execute(select(JOB).where(JOB.c.id == template_id)).mappings().one()
        ended = utcnow() - timedelta(hours=2)
        rows = [
            {
                **first,
                "id": new_id("job"),
                "customer_domain": f"old-{n}.example",
                "state": state,
                "created_at": ended - timedelta(seconds=5),
                "finished_at": ended,
                "idempotency_key": None,
                "external_ref": None,
            }
            for n in range(count)
        ]
        conn.execute(insert(JOB), rows)
    return [r["id"] for r in rows]


def _set(settings, job_id: str, **values) -> None:
    with get_engine(settings.database_url).begin() as conn:
        conn.execute(update(JOB).where(JOB.c.id == job_id).values(**values))


def _counts(settings) -> dict[tuple[str, str], int]:
    with session_scope(settings.database_url) as s:
        return monitoring.job_counts(s)


def test_a_job_that_ends_is_counted_at_the_next_scrape(settings, tenant):
    # Given jobs that ended long ago, counted once
    template = submit(settings, tenant)
    _ended_long_ago(settings, template, 3, JobState.SUCCEEDED)
    monitoring.forget_settled()
    before = _counts(settings)
    # When a queued job runs and then succeeds
    _set(settings, template, state=JobState.RUNNING)
    running = _counts(settings)
    _set(settings, template, state=JobState.SUCCEEDED, finished_at=utcnow())
    after = _counts(settings)
    # Then each scrape says so at once, though the long-ended ones are not counted again
    assert running[("running", OP)] == before.get(("running", OP), 0) + 1
    assert running.get(("queued", OP), 0) == before[("queued", OP)] - 1
    assert after[("succeeded", OP)] == before[("succeeded", OP)] + 1
    assert after.get(("running", OP), 0) == before.get(("running", OP), 0)


def test_a_scrape_does_not_read_the_jobs_that_ended_long_ago_again(settings, tenant):
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("counts SQLite's own steps")
    template = submit(settings, tenant)
    _ended_long_ago(settings, template, 2000, JobState.SUCCEEDED)
    refresh_statistics(settings.database_url)  # as the scheduler does: the planner's choice
    get_engine(settings.database_url).dispose()  # SQLite reads them when a connection opens
    monitoring.forget_settled()
    # The first scrape counts them all; the next one only what has not ended or ended since
    first = vm_steps(settings, monitoring.job_counts)
    second = vm_steps(settings, monitoring.job_counts)
    assert first - second > 2000
    # Behind 2,000 more jobs that ended long ago, a scrape costs what it did (other tests' jobs
    # not ended, in the same database, cost both alike)
    _ended_long_ago(settings, template, 2000, JobState.SUCCEEDED)
    third = vm_steps(settings, monitoring.job_counts)
    assert third - second < 200, (second, third)


def test_a_long_ended_job_retried_leaves_its_old_state_within_a_minute(
    settings, tenant, monkeypatch
):
    template = submit(settings, tenant)
    [old] = _ended_long_ago(settings, template, 1, JobState.FAILED)
    monitoring.forget_settled()
    before = _counts(settings)
    # When an operator retries the job that failed two hours ago
    _set(settings, old, state=JobState.QUEUED, finished_at=None)
    soon = _counts(settings)
    assert soon[("failed", OP)] == before[("failed", OP)]  # the kept count, for now
    # Then it is queued at once, and no longer failed once the kept count is a minute old
    assert soon[("queued", OP)] == before[("queued", OP)] + 1
    monkeypatch.setattr(counts, "SETTLED_S", 0.0)  # as if a minute had passed
    assert _counts(settings).get(("failed", OP), 0) == before[("failed", OP)] - 1
