"""A live worker keeps the leases of its jobs; a dead one's lapse."""

from __future__ import annotations

from datetime import timedelta

from bss.db import session_scope
from bss.jobs import sweep
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
    # (nothing left for its thread to renew once the session's database is dropped)
    keeper.release(ours)
    keeper.release(taken_over)


def test_a_lapsed_lease_is_sent_again_at_the_first_sweep_after_it_lapses_then_rarely(
    settings, tenant
):
    # A job accepted and sent a moment ago, whose worker died: its lease has just lapsed
    settings = settings.model_copy(update={"resend_after_seconds": 60})
    job_id = _running(settings, tenant, "lapsed.example", "host:3:t1")
    with session_scope(settings.database_url) as s:
        job = s.get(Job, job_id)
        job.enqueued_at = utcnow() - timedelta(seconds=5)
        job.lease_expires_at = utcnow() - timedelta(seconds=1)
    sent: list[str] = []
    # The first sweep sends it, though it was sent 5 s ago (not 60): a dead worker's job
    # waits for its lease and one sweep, not for the resend interval
    # (other tests' jobs in this database may be swept too: only this one is counted)
    sweep(settings, sent.append)
    assert sent.count(job_id) == 1
    # The next sweeps leave it alone: its message is on its way
    sweep(settings, sent.append)
    sweep(settings, sent.append)
    assert sent.count(job_id) == 1
