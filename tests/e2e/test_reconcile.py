"""Reconciliation end to end: with no notifications registered, a seat change made in the Admin
console is found by `bss reconcile` (the real command, against the stack's database and the
sandbox over HTTP), shown as drift in the billing API and told to billing's webhook by a real
worker; and an instance of hundreds of customers takes a few paged calls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
import requests
from pipeline import WebhookReceiver, order_params, sandbox_post
from sqlmodel import select

from bss.crypto import Vault, hash_api_key
from bss.db import session_scope
from bss.models import ApiKey, Distributor
from bss.notify import configure_webhook

STARTER = "1010020027"


@pytest.fixture
def receiver():
    r = WebhookReceiver()
    yield r
    r.close()


def _slug_and_hook(tenant, url: str | None = None) -> str:
    settings = tenant.stack.settings
    with session_scope(settings.database_url) as s:
        key = s.exec(select(ApiKey).where(ApiKey.key_hash == hash_api_key(tenant.api_key))).one()
        distributor = s.get(Distributor, key.distributor_id)
        if url:
            configure_webhook(
                s,
                settings=settings,
                distributor=distributor,
                vault=Vault(settings.secret_keys.split(",")),
                url=url,
                secret="whsec_reconcile-test-0123456789",
            )
        return distributor.slug


def bss(tenant, *args: str) -> subprocess.CompletedProcess:
    """The `bss` command in a shell with the stack's settings."""
    s = tenant.stack.settings
    env = {
        **os.environ,
        "BSS_HOME": str(s.home),
        "DATABASE_URL": s.database_url,
        "REDIS_URL": s.redis_url,
        "BSS_BROKER_URL": s.broker_url,
        "BSS_SECRET_KEYS": s.secret_keys,
        "GOOGLE_SANDBOX_URL": tenant.stack.sandbox,
        "BSS_PUBLIC_BASE_URLS": tenant.stack.web,
    }
    return subprocess.run(
        [sys.executable, "-m", "bss", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_with_pushes_off_reconciliation_finds_the_console_seat_change(tenant, receiver):
    # Given billing ordered 5 seats (its job succeeded) and receives our webhooks
    slug = _slug_and_hook(tenant, receiver.url)
    domain = f"recon-{uuid.uuid4().hex[:8]}.example"
    job = tenant.submit("order.create", order_params(domain))
    assert job.status_code == 202, job.text
    assert tenant.wait(job.json()["id"])["state"] == "succeeded"
    # And the scheduled reconciliation has mirrored it (no drift: Google has what was ordered)
    first = bss(tenant, "reconcile", f"{slug}/main")
    assert "Open drift (billing's desired state against Google): none" in first.stdout
    # And no notification is registered; the customer's admin raises the seats to 9
    sandbox_post(
        tenant.stack.sandbox,
        f"/_sandbox/customers/{domain}/subscriptions/{STARTER}/console",
        {"seats": 9},
    )
    # When the operator reconciles the instance
    ran = bss(tenant, "reconcile", f"{slug}/main")
    # Then it prints the change no notification told us, and the open drift against the order
    assert ran.returncode == 0, ran.stderr
    assert "1 Google call (reseller.subscriptions.list 1)" in ran.stdout
    assert f"{domain}  {STARTER}  seats: 5 -> 9" in ran.stdout
    assert f"{domain}  {STARTER}  seats: ours 5 (set by job {job.json()['id']}), " in ran.stdout
    # And the billing API lists it
    drift = requests.get(
        f"{tenant.stack.web}/api/v1/drift",
        headers={"Authorization": f"Bearer {tenant.api_key}"},
        timeout=10,
    )
    assert drift.status_code == 200, drift.text
    [row] = [d for d in drift.json()["drift"] if d["customer_domain"] == domain]
    assert (row["field"], row["desired"], row["actual"]) == ("seats", 5, 9)
    # And a worker delivers subscription.changed (before/after) and subscription.drifted
    deadline = time.monotonic() + 30
    wanted = {"subscription.changed", "subscription.drifted"}
    while time.monotonic() < deadline:
        told = {e["event"]: e["data"] for e in receiver.events() if e["event"] in wanted}
        if set(told) == wanted:
            break
        time.sleep(0.2)
    assert set(told) == wanted, receiver.events()
    changed = told["subscription.changed"]
    assert (changed["before"]["seats"], changed["after"]["seats"]) == (5, 9)
    assert changed["detected_by"] == "reconcile"
    # And running it again finds nothing new
    again = bss(tenant, "reconcile", f"{slug}/main")
    assert "Changes no notification had told us: none" in again.stdout
    assert "(0 opened, 0 cleared by this run)" in again.stdout


def test_three_hundred_customers_take_four_paged_calls(tenant):
    slug = _slug_and_hook(tenant)
    tag = uuid.uuid4().hex[:6]
    for n in range(300):
        sandbox_post(
            tenant.stack.sandbox,
            "/_sandbox/customers",
            {
                "customerDomain": f"many{n}-{tag}.example",
                "reseller": tenant.reseller,
                "subscriptions": [{"skuId": STARTER, "planName": "FLEXIBLE", "seats": 2}],
            },
        )
    ran = bss(tenant, "reconcile", f"{slug}/main", "--json")
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert report["subscriptions"] == 300 and report["customers"] == 300
    assert report["calls_by_method"] == {"reseller.subscriptions.list": 3}
