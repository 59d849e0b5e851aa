"""Webhooks: signatures, retries with backoff, settings, and the `bss webhooks` command."""

from __future__ import annotations

import socket
import time

import pytest
import requests
from click.testing import CliRunner
from sqlmodel import col, select

from bss.crypto import vault_from_settings
from bss.db import session_scope
from bss.errors import ValidationFailed
from bss.models import (
    DeliveryState,
    JobEvent,
    WebhookDelivery,
)
from bss.notify import configure_webhook, deliver, record_event, sign, verify
from bss.settings import get_settings
from bss.tools import main
from tests.support.samples import submit

# billing.example and erp.example, as a public DNS would answer (no DNS in unit tests).
BILLING_IP = "93.184.215.14"


def public_dns(host):
    return [BILLING_IP]


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
            s,
            settings=settings,
            distributor=tenant,
            vault=vault,
            url="https://billing.example/hook",
            resolve=public_dns,
        )
        assert tenant.webhook_secret_enc and secret not in tenant.webhook_secret_enc
        job_id = submit(settings, tenant)
        delivery_id = record_event(
            s, distributor_id=tenant.id, event="job.succeeded", data={"x": 1}, job_id=job_id
        ).id
    seen, resent = [], []

    def billing_down(url, data, headers, address, **_kw):  # the edge of the system
        assert address == BILLING_IP  # the address that was checked
        seen.append(verify(secret, headers, data))
        raise requests.ConnectionError("refused")

    for _ in range(3):
        with session_scope(settings.database_url) as s:
            s.get(WebhookDelivery, delivery_id).next_attempt_at = None
        deliver(
            settings,
            vault,
            delivery_id,
            resend=lambda d, ms: resent.append(ms),
            post=billing_down,
            resolve=public_dns,
        )
    assert seen == [True, True, True] and len(resent) == 2 and all(ms > 0 for ms in resent)
    with session_scope(settings.database_url) as s:
        delivery = s.get(WebhookDelivery, delivery_id)
        assert delivery.state == DeliveryState.FAILED and delivery.attempts == 3
        lines = [
            e.message
            for e in s.exec(
                select(JobEvent).where(JobEvent.job_id == job_id).order_by(col(JobEvent.id))
            ).all()
            if e.kind == "webhook"
        ]
    assert len(lines) == 4 and "given up" in lines[-1]


def test_webhook_settings_are_checked(settings, tenant):
    with session_scope(settings.database_url) as s, pytest.raises(ValidationFailed) as err:
        configure_webhook(
            s,
            settings=settings,
            distributor=tenant,
            vault=vault_from_settings(settings),
            url="ftp://x",
            secret="s",
        )
    assert {d["field"] for d in err.value.details} == {"url", "secret"}


def test_the_webhooks_command_sets_the_url_and_shows_the_secret_once(settings, tenant, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("BSS_SECRET_KEYS", settings.secret_keys)
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda host, *_a, **_k: [(socket.AF_INET, 1, 6, "", (BILLING_IP, 0))]
    )
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
