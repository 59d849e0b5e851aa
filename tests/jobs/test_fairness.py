"""Distributors share the workers: a distributor's jobs beyond its share are held in the database
and sent as its jobs end, oldest first and in turn across its instances. Real SQLite (or
PostgreSQL), no broker: `send` records what would be sent."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from bss import jobs
from bss.accounts import create_distributor
from bss.crypto import vault_from_settings
from bss.db import session_scope
from bss.errors import ValidationFailed
from bss.gateway import CallRecord
from bss.instances import create_instance
from bss.jobs import JobRunner, fair_share, release, set_max_in_flight, set_weight, sweep, turns
from bss.models import Distributor, InstanceStatus, Job, JobEvent, JobState, utcnow
from tests.conftest import CLIENT_ID
from tests.support.samples import CUSTOMER


def order(n: int) -> dict[str, Any]:
    return {**CUSTOMER, "domain": f"c{n}-{uuid.uuid4().hex[:6]}.example"}


def accept(settings, distributor, n: int = 0, *, instance: str = "main", send=None) -> str:
    """Submit a job as the API does (write, commit, then dispatch); its id."""
    with session_scope(settings.database_url) as s:
        job, _ = jobs.submit_job(
            s,
            distributor=s.get(Distributor, distributor.id),
            instance_name=instance,
            operation="customer.create",
            params=order(n),
            vault=vault_from_settings(settings),
        )
        s.commit()
        if send is not None:
            jobs.dispatch(s, job, send, settings=settings)
        return job.id


def record(settings, distributor, n: int = 0, *, instance: str = "main") -> str:
    """A job written but never sent (as if its release was lost): held."""
    return accept(settings, distributor, n, instance=instance)


def cap(settings, distributor, most: int | None) -> None:
    with session_scope(settings.database_url) as s:
        set_max_in_flight(s, s.get(Distributor, distributor.id), most)


def end(settings, *job_ids: str) -> None:
    """The jobs end (as a worker would finish them)."""
    with session_scope(settings.database_url) as s:
        for job_id in job_ids:
            job = s.get(Job, job_id)
            job.state, job.finished_at = JobState.SUCCEEDED, utcnow()
            s.add(job)


def row(settings, job_id: str) -> Job:
    with session_scope(settings.database_url) as s:
        return s.get(Job, job_id)


def add_instance(settings, distributor, name: str) -> None:
    vault = vault_from_settings(settings)
    with session_scope(settings.database_url) as s:
        inst = create_instance(
            s,
            vault=vault,
            distributor=s.get(Distributor, distributor.id),
            name=name,
            client_id=CLIENT_ID,
            client_secret="csecret",
        )
        inst.status = InstanceStatus.AUTHENTICATED
        inst.refresh_token_enc = vault.encrypt("1//refresh")
        s.add(inst)


# The share


def test_the_share_is_the_slots_times_the_weight_within_the_distributors_cap():
    assert fair_share(16, 1.0, None) == 16
    assert fair_share(16, 0.5, None) == 8
    assert fair_share(16, 2.5, None) == 40
    assert fair_share(16, 0.01, None) == 1  # never nothing
    assert fair_share(16, 1.0, 4) == 4 and fair_share(2, 1.0, 4) == 2
    assert fair_share(0, 1.0, None) is None  # fair sharing off
    assert fair_share(0, 1.0, 3) == 3


def test_a_bad_weight_or_cap_is_refused_in_words(settings, tenant):
    with session_scope(settings.database_url) as s:
        d = s.get(Distributor, tenant.id)
        for bad in (0.0, -1.0, float("nan"), 1e6):
            with pytest.raises(ValidationFailed, match="weight must be a number above 0"):
                set_weight(s, d, bad)
        with pytest.raises(ValidationFailed, match="1 or more.*set it to none"):
            set_max_in_flight(s, d, 0)
        set_weight(s, d, 2.0)
        set_max_in_flight(s, d, 5)
    with session_scope(settings.database_url) as s:
        d = s.get(Distributor, tenant.id)
        assert (d.weight, d.max_in_flight) == (2.0, 5)


# Admission


def test_jobs_beyond_the_share_are_held_and_say_why(settings, tenant):
    # Given a distributor that may have 2 jobs in flight
    cap(settings, tenant, 2)
    sent: list[str] = []
    # When billing sends four
    ids = [accept(settings, tenant, n, send=sent.append) for n in range(4)]
    # Then two are sent, and the others are held, each saying why in words
    assert sent == ids[:2]
    assert [row(settings, i).enqueued_at is not None for i in ids] == [True, True, False, False]
    third, fourth = row(settings, ids[2]), row(settings, ids[3])
    assert third.state == fourth.state == JobState.QUEUED
    assert third.wait_reason == (
        "Queued until one of this distributor's 2 jobs in progress ends; it runs 2 at a time."
    )
    assert fourth.wait_reason == (
        "Queued behind 1 earlier job of this distributor; it runs 2 at a time."
    )
    with session_scope(settings.database_url) as s:
        events = s.exec(
            select(JobEvent.message).where(JobEvent.job_id == ids[3]).order_by(col(JobEvent.id))
        ).all()
        assert events[-1] == fourth.wait_reason


@pytest.fixture
def another_tenant(settings) -> Distributor:
    """A second distributor, with an instance `main` of its own."""
    with session_scope(settings.database_url) as s:
        d = create_distributor(s, name=f"Other {uuid.uuid4().hex[:8]}")
    add_instance(settings, d, "main")
    return d


def test_a_job_is_sent_at_once_while_its_distributor_has_room(settings, tenant, another_tenant):
    # Given one distributor with a backlog held at its share
    cap(settings, tenant, 1)
    sent: list[str] = []
    backlog = [accept(settings, tenant, n, send=sent.append) for n in range(5)]
    assert sent == backlog[:1]
    # When another distributor sends one job
    theirs = accept(settings, another_tenant, send=sent.append)
    # Then it is sent at once: the backlog is not ahead of it
    assert sent[-1] == theirs and row(settings, theirs).wait_reason is None


def test_the_weight_sets_the_share(settings, tenant):
    settings = settings.model_copy(update={"fair_share_slots": 4})
    with session_scope(settings.database_url) as s:
        set_weight(s, s.get(Distributor, tenant.id), 0.5)
    sent: list[str] = []
    ids = [accept(settings, tenant, n, send=sent.append) for n in range(4)]
    assert sent == ids[:2]
    assert "it runs 2 at a time" in (row(settings, ids[3]).wait_reason or "")


def test_a_job_accepted_while_the_broker_is_away_stays_held_for_the_sweep(settings, tenant):
    def away(_job_id: str) -> None:
        raise ConnectionError("redis is down")

    with session_scope(settings.database_url) as s:
        job, _ = jobs.submit_job(
            s,
            distributor=s.get(Distributor, tenant.id),
            instance_name="main",
            operation="customer.create",
            params=order(0),
            vault=vault_from_settings(settings),
        )
        s.commit()
        # The API tells billing the start is delayed
        assert jobs.dispatch(s, job, away, settings=settings) is False
    # The job is not counted in flight, so it takes no slot while nothing runs it
    assert row(settings, job.id).enqueued_at is None
    sent: list[str] = []
    sweep(settings, sent.append)
    assert job.id in sent


# Release


def test_a_release_sends_the_oldest_held_jobs_that_fit_the_share(settings, tenant):
    cap(settings, tenant, 2)
    sent: list[str] = []
    ids = [accept(settings, tenant, n, send=sent.append) for n in range(5)]
    # When the first job ends, one slot is free: the oldest held job takes it
    end(settings, ids[0])
    assert release(settings, tenant.id, sent.append) == [ids[2]]
    assert row(settings, ids[2]).wait_reason is None
    # And nothing more fits until another job ends
    assert release(settings, tenant.id, sent.append) == []
    end(settings, ids[1], ids[2])
    assert release(settings, tenant.id, sent.append) == ids[3:5]
    assert sent == ids


def test_jobs_a_release_could_not_send_are_held_again_for_the_sweep(settings, tenant):
    cap(settings, tenant, 3)
    ids = [accept(settings, tenant, n, send=lambda _j: None) for n in range(6)]
    end(settings, *ids[:3])
    sent: list[str] = []

    def broker_drops_after_one(job_id: str) -> None:
        if sent:
            raise ConnectionError("redis went away")
        sent.append(job_id)

    # Three fit; the broker takes the first and fails on the second
    assert release(settings, tenant.id, broker_drops_after_one) == [ids[3]]
    assert row(settings, ids[3]).enqueued_at is not None
    # The two it did not take are held again (not counted in flight), and the next release or
    # the sweep sends them
    assert [row(settings, i).enqueued_at for i in ids[4:]] == [None, None]
    assert release(settings, tenant.id, sent.append) == ids[4:]


def test_a_release_skips_a_held_job_another_transaction_is_claiming_instead_of_waiting(
    settings, tenant
):
    # Two releasers claiming the same jobs in another order each waited for the other, and
    # PostgreSQL ended one as a deadlock (a worker's failed job, a 503 for an order). SQLite
    # has one writer at a time: nothing to wait for there.
    if settings.database_url.startswith("sqlite"):
        pytest.skip("row locks are PostgreSQL's")
    cap(settings, tenant, 3)
    ids = [accept(settings, tenant, n, send=lambda _j: None) for n in range(6)]
    end(settings, *ids[:3])
    with session_scope(settings.database_url) as other:
        # Another releaser has locked the oldest held job and not committed yet
        other.exec(select(Job).where(Job.id == ids[3]).with_for_update()).one()
        done: list[list[str]] = []
        releaser = threading.Thread(
            target=lambda: done.append(release(settings, tenant.id, lambda _j: None))
        )
        releaser.start()
        releaser.join(timeout=10)
        assert done == [ids[4:]], "the release waited for the other transaction"
        other.rollback()
    # The job it skipped is still held, and the next release sends it
    assert row(settings, ids[3]).enqueued_at is None
    assert release(settings, tenant.id, lambda _j: None) == [ids[3]]


@pytest.mark.parametrize("read_apart", [True, False], ids=["each-instance-apart", "one-window"])
def test_a_release_takes_the_instances_in_turn(settings, tenant, monkeypatch, read_apart):
    # (a distributor of more instances than are read apart is numbered in one window)
    if not read_apart:
        monkeypatch.setattr(turns, "MOST_READ_APART", 1)
    # Given a backlog on instance main, then two jobs on instance second, all held
    add_instance(settings, tenant, "second")
    main = [record(settings, tenant, n) for n in range(4)]
    second = [record(settings, tenant, n, instance="second") for n in range(2)]
    cap(settings, tenant, 3)
    # When three fit, the instances take turns, each oldest first
    assert release(settings, tenant.id, lambda _j: None) == [main[0], second[0], main[1]]
    end(settings, main[0], second[0], main[1])
    # (turns count from each instance's oldest held job, the older one going first in a turn)
    assert release(settings, tenant.id, lambda _j: None) == [main[2], second[1], main[3]]


def test_two_releasers_never_send_the_same_job_nor_more_than_the_share(settings, tenant):
    # Given 20 held jobs and a share of 10
    ids = [record(settings, tenant, n) for n in range(20)]
    cap(settings, tenant, 10)
    sent: list[str] = []
    # When eight releasers run at once
    start = threading.Barrier(8)

    def releaser() -> None:
        start.wait()
        release(settings, tenant.id, sent.append)

    threads = [threading.Thread(target=releaser) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then each job was sent once, and no more than the share
    assert len(sent) == len(set(sent)) == 10
    assert sorted(sent) == sorted(ids[:10])


def test_a_job_claimed_by_one_releaser_is_not_claimed_by_another(settings, tenant):
    from bss.jobs.fairness import Terms, _claim, _next_turns

    ids = [record(settings, tenant, n) for n in range(3)]
    # Both read the same turns before either claims: the claims do not overlap
    with session_scope(settings.database_url) as a, session_scope(settings.database_url) as b:
        turns_a, _ = _next_turns(a, tenant.id, Terms(2, 1))
        turns_b, _ = _next_turns(b, tenant.id, Terms(2, 1))
        assert turns_a == turns_b == ids[:2]
        first = _claim(a, turns_a, utcnow())
        a.commit()
        second = _claim(b, turns_b, utcnow())
    assert first == ids[:2] and second == []


class Google:
    """Google at the edge: the customer does not exist yet, and inserting it succeeds."""

    def __call__(self, *, settings: Any, credentials: Any, record: Any, **_kw: Any) -> Google:
        self.record = record
        return self

    def get_or_none(self, method: str, _request: Any) -> None:
        self.record(CallRecord(method, 404, "notFound", 9, 1))

    def call(self, method: str, _request: Any) -> dict[str, Any]:
        self.record(CallRecord(method, 200, None, 15, 1))
        return {"customerId": "C0" + uuid.uuid4().hex[:6]}


def test_a_job_that_ends_in_a_worker_sends_the_next_held_one(settings, tenant):
    cap(settings, tenant, 1)
    first, second = (accept(settings, tenant, n, send=lambda _j: None) for n in range(2))
    resent: list[tuple[str, int]] = []
    runner = JobRunner(
        settings=settings,
        vault=vault_from_settings(settings),
        resend=lambda job_id, delay: resent.append((job_id, delay)),
        gateway_factory=Google(),
    )
    assert runner.run(first, worker="w1") == JobState.SUCCEEDED
    assert resent == [(second, 0)]
    assert runner.run(second, worker="w1") == JobState.SUCCEEDED
    assert row(settings, second).wait_reason is None


# The sweep, a safety net


def test_the_sweep_sends_held_jobs_whose_release_was_lost_within_the_share(settings, tenant):
    # Given a job in flight whose message was lost, and three held jobs nobody released
    settings = settings.model_copy(update={"resend_after_seconds": 60})
    cap(settings, tenant, 2)
    lost = accept(settings, tenant, send=lambda _j: None)
    with session_scope(settings.database_url) as s:
        job = s.get(Job, lost)
        job.enqueued_at = job.updated_at = utcnow() - timedelta(minutes=5)
        s.add(job)
    held = [record(settings, tenant, n) for n in range(3)]
    sent: list[str] = []
    sweep(settings, sent.append)
    # Then the lost message is sent again (it holds its slot), and one held job fills the share
    mine = [j for j in sent if j in {lost, *held}]
    assert sorted(mine) == sorted([lost, held[0]])
    with session_scope(settings.database_url) as s:
        notes = s.exec(
            select(JobEvent.message).where(JobEvent.job_id == held[0], JobEvent.kind == "sweep")
        ).all()
        assert notes == ["Sent to a worker by the scheduler: its distributor had room"]
        still = s.exec(
            select(Job.id).where(col(Job.id).in_(held[1:]), col(Job.enqueued_at).is_(None))
        ).all()
        assert sorted(still) == sorted(held[1:])
