"""Running jobs: time limits, secrets kept apart, the sweep, instance status. Real SQLite, no
Google."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from dramatiq.middleware.time_limit import TimeLimitExceeded
from sqlmodel import col, select

from bss import jobs
from bss.crypto import vault_from_settings
from bss.db import session_scope
from bss.errors import IdempotencyConflict, ValidationFailed
from bss.jobs import JobRunner, sweep
from bss.jobs.ordering import blocker, wait_behind
from bss.models import (
    Instance,
    InstanceStatus,
    Job,
    JobEvent,
    JobSecret,
    JobState,
    utcnow,
)
from bss.notify import configure_webhook, record_event
from tests.support.samples import CUSTOMER, submit


class SlowGoogle:
    """A gateway at the edge of the system whose calls outlast the job's time limit."""

    def __init__(self, **_kw):
        pass

    def get_or_none(self, *_a, **_kw):
        raise TimeLimitExceeded()

    call = get_or_none


def test_an_attempt_past_its_time_limit_is_retried_later_with_the_next_time_shown(settings, tenant):
    job_id = submit(settings, tenant)
    resent = []
    runner = JobRunner(
        settings=settings,
        vault=vault_from_settings(settings),
        resend=lambda j, delay: resent.append((j, delay)),
        gateway_factory=SlowGoogle,
    )
    assert runner.run(job_id, worker="w1") == JobState.RETRYING
    with session_scope(settings.database_url) as s:
        job = s.get(Job, job_id)
        assert job.state == JobState.RETRYING and job.lease_owner is None
        assert job.error["code"] == "time_limit"
        assert job.next_attempt_at > utcnow()
    assert resent and resent[0][0] == job_id and resent[0][1] > 0


def test_a_given_password_is_kept_encrypted_and_never_in_the_job_row(settings, tenant):
    params = {
        "primary_email": "root@acme.example",
        "given_name": "Root",
        "family_name": "User",
        "password": "Sup3r-secret-pw",
    }
    job_id = submit(settings, tenant, "user.create_admin", params)
    with session_scope(settings.database_url) as s:
        job = s.get(Job, job_id)
        assert job.params["password"] == "<secret>"
        assert "Sup3r-secret-pw" not in json.dumps(job.params) + job.request_hash
        [secret] = s.exec(select(JobSecret).where(JobSecret.job_id == job_id)).all()
        assert secret.value_enc != "Sup3r-secret-pw"
        assert vault_from_settings(settings).decrypt(secret.value_enc) == "Sup3r-secret-pw"
    # A replay with the same password is the same job; with another one it is refused
    assert submit(settings, tenant, "user.create_admin", params) != job_id  # no key: new job
    with session_scope(settings.database_url) as s:
        first, _ = jobs.submit_job(
            s,
            distributor=tenant,
            instance_name="main",
            operation="user.create_admin",
            params=params,
            idempotency_key="k1",
            vault=vault_from_settings(settings),
        )
    with session_scope(settings.database_url) as s:
        again, created = jobs.submit_job(
            s,
            distributor=tenant,
            instance_name="main",
            operation="user.create_admin",
            params=params,
            idempotency_key="k1",
            vault=vault_from_settings(settings),
        )
        assert again.id == first.id and not created
    with (
        session_scope(settings.database_url) as s,
        pytest.raises(IdempotencyConflict, match="different"),
    ):
        jobs.submit_job(
            s,
            distributor=tenant,
            instance_name="main",
            operation="user.create_admin",
            params={**params, "password": "Another-pw-123"},
            idempotency_key="k1",
            vault=vault_from_settings(settings),
        )


def test_a_secret_mark_without_its_secret_never_passes_for_the_secret():
    params = {"admin": {"primary_email": "a@b.example", "password": "<secret>"}}
    assert jobs.with_secrets(params, {}, ["admin.password"]) == {
        "admin": {"primary_email": "a@b.example"}
    }
    assert (
        jobs.with_secrets(params, {"admin.password": "pw"}, ["admin.password"])["admin"]["password"]
        == "pw"
    )


def test_the_sweep_resends_lost_messages_resumes_reauthenticated_jobs_and_webhooks(
    settings, tenant
):
    settings = settings.model_copy(update={"resend_after_seconds": 0})
    lost = submit(settings, tenant)
    parked = submit(settings, tenant)
    with session_scope(settings.database_url) as s:
        job = s.get(Job, parked)
        job.state = JobState.WAITING_REAUTH
        s.add(job)
        configure_webhook(
            s,
            settings=settings,
            distributor=tenant,
            vault=vault_from_settings(settings),
            url="https://billing.example/h",
        )
        delivery = record_event(
            s, distributor_id=tenant.id, event="job.failed", data={}, job_id=lost
        )
        delivery.updated_at = utcnow() - timedelta(seconds=5)
        delivery_id = delivery.id
    time.sleep(0.01)
    sent, hooks = [], []
    sweep(settings, sent.append, send_webhook=hooks.append)
    assert lost in sent and parked in sent
    assert delivery_id in hooks
    with session_scope(settings.database_url) as s:
        assert s.get(Job, parked).state == JobState.QUEUED
        kinds = [e.kind for e in s.exec(select(JobEvent).where(JobEvent.job_id == lost)).all()]
        assert "sweep" in kinds


def test_a_job_whose_worker_died_is_sent_again_once_per_resend_interval(settings, tenant):
    settings = settings.model_copy(update={"resend_after_seconds": 60})
    orphan = submit(settings, tenant)
    with session_scope(settings.database_url) as s:
        job = s.get(Job, orphan)
        job.state, job.lease_owner = JobState.RUNNING, "worker-killed"
        job.lease_expires_at = utcnow() - timedelta(seconds=1)
        job.enqueued_at = utcnow() - timedelta(minutes=5)
        s.add(job)
    first, again = [], []
    sweep(settings, first.append)
    # Its message now waits in the queue: the next sweeps leave it alone until it is overdue
    sweep(settings, again.append)
    assert orphan in first and orphan not in again


def test_jobs_on_one_customer_wait_in_order_and_the_sweep_frees_them_when_it_ends(settings, tenant):
    first, second = submit(settings, tenant), submit(settings, tenant)
    elsewhere = submit(settings, tenant, params={**CUSTOMER, "domain": "other.example"})
    with session_scope(settings.database_url) as s:
        rows = s.exec(select(Job).where(col(Job.id).in_([first, second, elsewhere]))).all()
        jobs = {j.id: j for j in rows}
        assert blocker(s, jobs[first]) is None and blocker(s, jobs[elsewhere]) is None
        assert blocker(s, jobs[second]) == first
        wait_behind(s, jobs[second], jobs[first])
    sent = []
    sweep(settings.model_copy(update={"resend_after_seconds": 3600}), sent.append)
    assert second not in sent  # the first has not ended
    with session_scope(settings.database_url) as s:
        s.get(Job, first).state = JobState.CANCELLED
    sweep(settings.model_copy(update={"resend_after_seconds": 3600}), sent.append)
    assert second in sent


def test_instance_status_is_unchanged_by_a_refused_job(settings, tenant):
    with pytest.raises(ValidationFailed):
        submit(settings, tenant, "subscription.change_seats", {"customer": "x", "seats": 0})
    with session_scope(settings.database_url) as s:
        inst = s.exec(select(Instance).where(Instance.distributor_id == tenant.id)).one()
        assert inst.status == InstanceStatus.AUTHENTICATED


class RecordingGoogle:
    """A gateway at the edge that answers every call and notes the refresh token it was given."""

    tokens: list[str] = []

    def __init__(self, *, credentials, **_kw):
        inner = getattr(credentials, "inner", credentials)
        RecordingGoogle.tokens.append(getattr(inner, "refresh_token", None))

    def get_or_none(self, *_a, **_kw):
        return None

    def call(self, *_a, **_kw):
        return {"customerId": "C01", "customerDomain": "acme.example"}


def test_a_runner_sees_its_instance_change_between_two_jobs(settings, tenant):
    """The process keeps the instance it loaded, but never past a change to it: a new refresh
    token is used by the next job, and a disabled instance parks it."""
    vault = vault_from_settings(settings)
    RecordingGoogle.tokens = []
    runner = JobRunner(
        settings=settings, vault=vault, resend=lambda *_: None, gateway_factory=RecordingGoogle
    )
    assert runner.run(submit(settings, tenant), worker="w1") == JobState.SUCCEEDED
    with session_scope(settings.database_url) as s:
        inst = s.exec(select(Instance).where(Instance.distributor_id == tenant.id)).one()
        inst.refresh_token_enc = vault.encrypt("1//after-reauth")
        s.add(inst)
    other = {**CUSTOMER, "domain": "second.example"}
    assert runner.run(submit(settings, tenant, params=other), worker="w1") == JobState.SUCCEEDED
    assert RecordingGoogle.tokens == ["1//refresh", "1//after-reauth"]

    with session_scope(settings.database_url) as s:
        inst = s.exec(select(Instance).where(Instance.distributor_id == tenant.id)).one()
        inst.status = InstanceStatus.DISABLED
        s.add(inst)
    third = {**CUSTOMER, "domain": "third.example"}
    assert runner.run(submit(settings, tenant, params=third), worker="w1") == (
        JobState.WAITING_REAUTH
    )
    assert len(RecordingGoogle.tokens) == 2  # no Google call for the parked job
