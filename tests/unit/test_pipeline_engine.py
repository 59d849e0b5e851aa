"""The job engine's edges: time limits, the sweep, webhooks, API keys. Real SQLite, no Google."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
import requests
from click.testing import CliRunner
from dramatiq.middleware.time_limit import TimeLimitExceeded
from samples import CUSTOMER
from sqlmodel import select

from bss import jobs
from bss.cli import main
from bss.crypto import vault_from_settings
from bss.db import session_scope
from bss.errors import IdempotencyConflict, NotFound, ValidationFailed
from bss.models import (
    DeliveryState,
    Instance,
    InstanceStatus,
    Job,
    JobEvent,
    JobSecret,
    JobState,
    WebhookDelivery,
    utcnow,
)
from bss.runner import JobRunner
from bss.scheduler import sweep
from bss.settings import get_settings
from bss.tenancy import create_api_key, list_api_keys, revoke_api_key
from bss.webhooks import configure_webhook, deliver, record_event, sign, verify


def submit(settings, distributor, operation="customer.create", params=CUSTOMER):
    with session_scope(settings.database_url) as s:
        job, _ = jobs.submit_job(
            s,
            distributor=distributor,
            instance_name="main",
            operation=operation,
            params=params,
            vault=vault_from_settings(settings),
        )
        return job.id


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


def test_webhook_signatures_verify_and_tampering_does_not(settings, tenant):
    body = b'{"event":"job.succeeded"}'
    ts = str(int(time.time()))
    headers = {"X-BSS-Timestamp": ts, "X-BSS-Signature": "sha256=" + sign("s3cret", ts, body)}
    assert verify("s3cret", headers, body)
    assert not verify("s3cret", headers, body + b" ")
    assert not verify("other", headers, body)
    old = str(int(time.time()) - 3600)
    stale = {"X-BSS-Timestamp": old, "X-BSS-Signature": "sha256=" + sign("s3cret", old, body)}
    assert not verify("s3cret", stale, body)


def test_a_failing_receiver_is_retried_with_backoff_then_given_up(settings, tenant):
    settings = settings.model_copy(update={"webhook_max_attempts": 3})
    vault = vault_from_settings(settings)
    with session_scope(settings.database_url) as s:
        secret = configure_webhook(
            s, distributor=tenant, vault=vault, url="https://billing.example/hook"
        )
        assert tenant.webhook_secret_enc and secret not in tenant.webhook_secret_enc
        job_id = submit(settings, tenant)
        delivery_id = record_event(
            s, distributor_id=tenant.id, event="job.succeeded", data={"x": 1}, job_id=job_id
        ).id
    seen, resent = [], []

    def billing_down(url, data, headers, **_kw):  # the receiver: at the edge of the system
        seen.append(verify(secret, headers, data))
        raise requests.ConnectionError("refused")

    for _ in range(3):
        with session_scope(settings.database_url) as s:
            s.get(WebhookDelivery, delivery_id).next_attempt_at = None
        deliver(
            settings, vault, delivery_id, resend=lambda d, ms: resent.append(ms), post=billing_down
        )
    assert seen == [True, True, True] and len(resent) == 2 and all(ms > 0 for ms in resent)
    with session_scope(settings.database_url) as s:
        delivery = s.get(WebhookDelivery, delivery_id)
        assert delivery.state == DeliveryState.FAILED and delivery.attempts == 3
        lines = [
            e.message
            for e in s.exec(select(JobEvent).where(JobEvent.job_id == job_id)).all()
            if e.kind == "webhook"
        ]
    assert len(lines) == 4 and "given up" in lines[-1]


def test_webhook_settings_are_checked(settings, tenant):
    with session_scope(settings.database_url) as s, pytest.raises(ValidationFailed) as err:
        configure_webhook(
            s, distributor=tenant, vault=vault_from_settings(settings), url="ftp://x", secret="s"
        )
    assert {d["field"] for d in err.value.details} == {"url", "secret"}


def test_api_keys_are_listed_and_revoked_one_at_a_time(settings, tenant):
    with session_scope(settings.database_url) as s:
        create_api_key(s, distributor=tenant, label="billing")
        create_api_key(s, distributor=tenant, label="billing")
        keys = list_api_keys(s, distributor=tenant)
        revoke_api_key(s, distributor=tenant, key_id=keys[0].prefix)
        with pytest.raises(NotFound):
            revoke_api_key(s, distributor=tenant, key_id="bss_nope")
        states = [k.revoked_at is None for k in list_api_keys(s, distributor=tenant)]
    assert states == [False, True]


def test_the_api_keys_command_creates_lists_and_revokes(settings, tenant, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("BSS_SECRET_KEYS", settings.secret_keys)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        made = runner.invoke(main, ["api-keys", "create", tenant.slug, "--label", "erp"])
        assert made.exit_code == 0 and made.output.startswith("bss_")
        listed = runner.invoke(main, ["api-keys", "list", tenant.slug])
        assert "erp" in listed.output and "active" in listed.output
        assert made.output.strip() not in listed.output  # shown once, never again
        key_id = listed.output.split("\t", 1)[0]
        revoked = runner.invoke(main, ["api-keys", "revoke", tenant.slug, key_id])
        assert revoked.exit_code == 0, revoked.output
        assert "revoked" in runner.invoke(main, ["api-keys", "list", tenant.slug]).output
        missing = runner.invoke(main, ["api-keys", "revoke", tenant.slug, "999999"])
        assert missing.exit_code != 0 and "No API key" in missing.output
    finally:
        get_settings.cache_clear()


def test_instance_status_is_unchanged_by_a_refused_job(settings, tenant):
    with pytest.raises(ValidationFailed):
        submit(settings, tenant, "subscription.change_seats", {"customer": "x", "seats": 0})
    with session_scope(settings.database_url) as s:
        inst = s.exec(select(Instance).where(Instance.distributor_id == tenant.id)).one()
        assert inst.status == InstanceStatus.AUTHENTICATED


def test_the_webhooks_command_sets_the_url_and_shows_the_secret_once(settings, tenant, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("BSS_SECRET_KEYS", settings.secret_keys)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        done = runner.invoke(main, ["webhooks", "set", tenant.slug, "https://erp.example/hooks"])
        assert done.exit_code == 0, done.output
        secret = done.output.rsplit(": ", 1)[1].strip()
        bad = runner.invoke(main, ["webhooks", "set", tenant.slug, "not-a-url"])
        assert bad.exit_code != 0 and "invalid" in bad.output
    finally:
        get_settings.cache_clear()
    with session_scope(settings.database_url) as s:
        d = s.get(type(tenant), tenant.id)
        assert d.webhook_url == "https://erp.example/hooks"
        assert vault_from_settings(settings).decrypt(d.webhook_secret_enc) == secret
