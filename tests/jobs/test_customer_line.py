"""The job to wait for on the same customer, read by every lease and every order: it costs the
same whatever the instance's history, because it reads the customer's own jobs, not all of the
instance's. Real SQLite; the work counted in SQLite's virtual machine steps, not in seconds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from bss.db import get_engine, session_scope
from bss.jobs.ordering import blocker
from bss.jobs.rows import JOB, LOOK
from bss.models import JobState, new_id
from tests.jobs.test_intake import order
from tests.support.samples import submit


def _history(settings, template_id: str, count: int) -> None:
    """`count` ended jobs of other customers on the same instance, older than the template."""
    with get_engine(settings.database_url).begin() as conn:
        first = conn.execute(select(JOB).where(JOB.c.id == template_id)).mappings().one()
        start = first["created_at"] - timedelta(days=30)
        conn.execute(
            insert(JOB),
            [
                {
                    **first,
                    "id": new_id("job"),
                    "customer_domain": f"other-{n}.example",
                    "state": JobState.SUCCEEDED,
                    "created_at": start + timedelta(seconds=n),
                    "finished_at": start + timedelta(seconds=n + 1),
                    "idempotency_key": None,
                    "external_ref": None,
                }
                for n in range(count)
            ],
        )


def vm_steps(settings, read: Callable[[Any], Any]) -> int:
    """SQLite's virtual machine steps (counted by its progress handler) that `read` takes."""
    counted = [0]

    def count() -> int:
        counted[0] += 1
        return 0  # go on

    with session_scope(settings.database_url) as s:
        sqlite = s.connection().connection.driver_connection
        sqlite.set_progress_handler(count, 1)
        try:
            read(s)
        finally:
            sqlite.set_progress_handler(None, 1)
    return counted[0]


def _job(settings, job_id: str) -> Any:
    with get_engine(settings.database_url).connect() as conn:
        return conn.execute(select(JOB).where(JOB.c.id == job_id)).one()


def test_a_lease_and_an_order_read_the_customers_jobs_not_the_instances_history(settings, tenant):
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("counts SQLite's own steps; PostgreSQL's plan depends on its statistics")
    # Given a job for a customer whose instance has run a few other jobs
    small = submit(settings, tenant, params=order(1))
    _history(settings, small, 10)
    look_small = vm_steps(settings, lambda s: s.connection().execute(LOOK, {"job_id": small}).one())
    wait_small = vm_steps(settings, lambda s: blocker(s, _job(settings, small)))
    # When the instance has run 3,000 more for other customers
    _history(settings, small, 3000)
    large = submit(settings, tenant, params=order(2))
    look_large = vm_steps(settings, lambda s: s.connection().execute(LOOK, {"job_id": large}).one())
    wait_large = vm_steps(settings, lambda s: blocker(s, _job(settings, large)))
    # Then finding what each must wait for takes no more work than before
    assert look_large <= look_small * 1.2, (look_small, look_large)
    assert wait_large <= wait_small * 1.2, (wait_small, wait_large)


def test_the_job_to_wait_for_is_still_found(settings, tenant):
    # Given two orders for one customer among other customers' jobs
    params = order(3)
    first = submit(settings, tenant, params=params)
    _history(settings, first, 50)
    second = submit(settings, tenant, params={**params, "alternate_email": "b@acme.example"})
    # Then the second waits for the first, and the first for nothing
    with session_scope(settings.database_url) as s:
        assert s.connection().execute(LOOK, {"job_id": second}).one().blocker_id == first
        assert s.connection().execute(LOOK, {"job_id": first}).one().blocker_id is None
        assert blocker(s, _job(settings, second)) == first
