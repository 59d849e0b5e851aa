"""A live worker keeps the leases of its jobs; a dead one's lapse."""

from __future__ import annotations

from datetime import timedelta

from bss.db import session_scope
from bss.jobs.leases import LeaseKeeper
from bss.models import Job, JobState, utcnow
from tests.support.samples import CUSTOMER, submit


def _running(settings, tenant, domain, owner):
    job_id = submit(settings, tenant, params={**CUSTOMER, "domain": domain})
    with session_scope(settings.database_url) as s:
        job = s.get(Job, job_id)
        job.state, job.lease_owner = JobState.RUNNING, owner
        job.lease_expires_at = utcnow() + timedelta(seconds=2)
    return job_id


def _lease_left(settings, job_id) -> float:
    with session_scope(settings.database_url) as s:
        expires = s.get(Job, job_id).lease_expires_at
        return (expires.replace(tzinfo=utcnow().tzinfo) - utcnow()).total_seconds()


def test_held_leases_are_renewed_and_no_others(settings, tenant):
    settings = settings.model_copy(update={"job_lease_seconds": 20})
    ours = _running(settings, tenant, "ours.example", "host:1:t1")
    taken_over = _running(settings, tenant, "taken.example", "host:2:t1")
    released = _running(settings, tenant, "released.example", "host:1:t2")
    keeper = LeaseKeeper(settings)
    keeper.hold(ours, "host:1:t1")
    keeper.hold(taken_over, "host:1:t9")  # another worker leased it since: not ours to renew
    keeper.hold(released, "host:1:t2")
    keeper.release(released)
    assert keeper.renew() == 1
    assert _lease_left(settings, ours) > 15
    assert _lease_left(settings, taken_over) < 3 and _lease_left(settings, released) < 3
