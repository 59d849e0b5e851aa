"""Webhooks to billing: signed, retried when the receiver fails, every attempt on the job."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import requests
from pipeline import WebhookReceiver, customer_params, new_domain, sandbox_post
from requests.structures import CaseInsensitiveDict
from sqlmodel import select

from bss.crypto import Vault, hash_api_key
from bss.db import session_scope
from bss.models import ApiKey, Distributor
from bss.notify import configure_webhook

SECRET = "whsec_test-secret-0123456789"


def readme_verify():
    """The README's verification snippet itself, run as a billing engineer would paste it."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    snippet = next(b for b in blocks if "def verify(" in b)
    namespace: dict = {}
    exec(snippet, namespace)  # noqa: S102 - our own README
    return namespace["verify"]


def verify(secret: str, headers: dict, body: bytes) -> bool:
    # HTTP header names are case-insensitive; the receiver here keeps them lower-cased.
    return readme_verify()(secret, CaseInsensitiveDict(headers), body)


@pytest.fixture
def receiver():
    r = WebhookReceiver(fail_first=2)
    yield r
    r.close()


def hook(tenant, url):
    with session_scope(tenant.stack.settings.database_url) as s:
        key = s.exec(select(ApiKey).where(ApiKey.key_hash == hash_api_key(tenant.api_key))).one()
        configure_webhook(
            s,
            settings=tenant.stack.settings,
            distributor=s.get(Distributor, key.distributor_id),
            vault=Vault(tenant.stack.settings.secret_keys.split(",")),
            url=url,
            secret=SECRET,
        )


def wait_for(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_signed_event_reaches_billing_after_the_receiver_failed_twice(tenant, receiver):
    # Given billing's endpoint answers 503 twice before it accepts
    hook(tenant, receiver.url)
    job = tenant.wait(tenant.submit("customer.create", customer_params(new_domain())).json()["id"])
    assert job["state"] == "succeeded"
    # Then the event is delivered on the third attempt, each one signed
    wait_for(lambda: len(receiver.requests) >= 3)
    time.sleep(0.5)
    assert len(receiver.requests) == 3
    for request in receiver.requests:
        assert verify(SECRET, request["headers"], request["body"])
        assert not verify("whsec_another-secret-xxxxxxxx", request["headers"], request["body"])
    event = json.loads(receiver.requests[-1]["body"])
    assert event["event"] == "job.succeeded"
    assert event["data"]["job"]["id"] == job["id"]
    assert event["data"]["job"]["result"] == job["result"]
    assert receiver.requests[-1]["headers"]["x-bss-event"] == "job.succeeded"
    # And every attempt is on the job's timeline
    timeline = requests.get(
        f"{tenant.stack.web}/api/v1/jobs/{job['id']}/timeline",
        headers={"Authorization": f"Bearer {tenant.api_key}"},
        timeout=10,
    ).json()["events"]
    attempts = [e["data"] for e in timeline if e["kind"] == "webhook" and "attempt" in e["data"]]
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, 503), (2, 503), (3, 204)]
    google = [e["data"]["method"] for e in timeline if e["kind"] == "google_call"]
    assert google == ["reseller.customers.get", "reseller.customers.insert"]


def test_a_revoked_grant_tells_billing_the_instance_needs_reauthentication(tenant):
    receiver = WebhookReceiver()
    try:
        hook(tenant, receiver.url)
        sandbox_post(
            tenant.stack.sandbox,
            "/_sandbox/revoke",
            {"client_id": tenant.client_id, "user": tenant.admin},
        )
        job_id = tenant.submit("customer.create", customer_params(new_domain())).json()["id"]
        assert tenant.wait(job_id, {"waiting_reauth"})["state"] == "waiting_reauth"
        wait_for(lambda: len(receiver.requests) >= 2)
        by_event = {e["event"]: e for e in receiver.events()}
        assert by_event["instance.needs_reauth"]["data"]["instance"]["name"] == "main"
        assert by_event["instance.needs_reauth"]["data"]["instance"]["status"] == "needs_reauth"
        assert by_event["job.waiting_reauth"]["data"]["job"]["id"] == job_id
        body = json.dumps(by_event)
        assert "refresh_token" not in body and "access_token" not in body
    finally:
        receiver.close()
