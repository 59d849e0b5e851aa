"""One order from the billing API through a real worker to the sandbox and back."""

from __future__ import annotations

import requests
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build

from bss.gateway import REQUIRED_SCOPES

CUSTOMER = {
    "domain": "acme-widgets.example",
    "alternate_email": "it@acme.example.net",
    "postal_address": {
        "contact_name": "Ada Admin",
        "organization_name": "Acme Widgets",
        "postal_code": "94043",
        "country_code": "US",
    },
}


def read_customer(tenant, domain: str) -> dict:
    """Read the customer back from the sandbox with the unmodified Google client."""
    creds = Credentials(
        None,
        refresh_token=None,
        client_id=tenant.client_id,
        client_secret=tenant.client_secret,
        token_uri=f"{tenant.stack.sandbox}/token",
    )
    grant = requests.post(
        f"{tenant.stack.sandbox}/_sandbox/tokens",
        timeout=10,
        json={"client_id": tenant.client_id, "user": tenant.admin, "scopes": list(REQUIRED_SCOPES)},
    )
    creds = Credentials(grant.json()["access_token"], token_uri=creds.token_uri)
    reseller = build(
        "reseller",
        "v1",
        credentials=creds,
        static_discovery=True,
        client_options={"api_endpoint": tenant.stack.sandbox + "/"},
    )
    return reseller.customers().get(customerId=domain).execute()


def test_customer_create_goes_from_the_api_through_a_worker_to_google(tenant):
    # Given an authenticated instance, when billing submits customer.create
    resp = tenant.submit(
        "customer.create", CUSTOMER, idempotency_key="order-1", external_ref="INV-1"
    )
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert job["state"] == "queued" and job["external_ref"] == "INV-1"
    assert resp.headers["Location"].endswith(f"/api/v1/jobs/{job['id']}")

    # Then a worker runs it to success
    done = tenant.wait(job["id"])
    assert done["state"] == "succeeded", done
    assert done["steps_done"] == ["customer_check", "customer"]
    assert done["result"]["created"] is True

    # And Google holds the customer
    customer = read_customer(tenant, "acme-widgets.example")
    assert customer["customerId"] == done["result"]["customer_id"]
    assert customer["alternateEmail"] == "it@acme.example.net"
    assert customer["postalAddress"]["organizationName"] == "Acme Widgets"


def test_a_replayed_request_returns_the_same_job_and_creates_nothing_twice(tenant):
    first = tenant.submit("customer.create", CUSTOMER, idempotency_key="order-2")
    replay = tenant.submit("customer.create", CUSTOMER, idempotency_key="order-2")
    assert (first.status_code, replay.status_code) == (202, 200)
    assert replay.json()["id"] == first.json()["id"]
    assert tenant.wait(first.json()["id"])["state"] == "succeeded"
    calls = requests.get(f"{tenant.stack.sandbox}/_sandbox/calls", timeout=10).json()
    inserts = [c for c in _items(calls) if c.get("method") == "reseller.customers.insert"]
    assert len(inserts) == 1


def test_an_existing_customer_is_adopted_not_created_again(tenant):
    # Given the customer exists at Google already (say, an earlier response was lost)
    first = tenant.wait(tenant.submit("customer.create", CUSTOMER).json()["id"])
    # When billing asks again under a new key
    second = tenant.wait(tenant.submit("customer.create", CUSTOMER).json()["id"])
    # Then the job succeeds without a second insert
    assert second["state"] == "succeeded"
    assert second["result"] == {"customer_id": first["result"]["customer_id"], "created": False}


def test_bad_input_is_refused_with_every_field_and_nothing_is_queued(tenant):
    resp = tenant.submit("customer.create", {"domain": "x", "postal_address": {}})
    assert resp.status_code == 422
    err = resp.json()["error"]
    assert err["code"] == "validation_failed"
    fields = {d["field"] for d in err["details"]}
    assert {
        "params.domain",
        "params.alternate_email",
        "params.postal_address.contact_name",
    } <= fields


def test_requests_without_a_valid_key_are_refused(tenant):
    resp = requests.post(
        f"{tenant.stack.web}/api/v1/jobs",
        json={},
        timeout=10,
        headers={"Authorization": "Bearer bss_wrong"},
    )
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "unauthorized"


def _items(value):
    if isinstance(value, dict):
        value = value.get("calls", list(value.values()))
    return [v for v in value if isinstance(v, dict)]
