"""The billing API's view of Google's side: customers and subscriptions from the mirror, open
drift, and resolving it either way, each scoped to the API key's distributor."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import select

from bss.accounts import create_api_key, create_distributor
from bss.crypto import vault_from_settings
from bss.db import session_scope
from bss.instances import create_instance
from bss.models import DesiredSubscription, Drift, Instance
from tests.conftest import CLIENT_ID
from tests.support.google_events import drifted_customer
from web import create_app


@pytest.fixture
def billing(settings, tenant):
    """Billing's API client of `tenant`, the jobs the app sent, and a drifted customer."""
    with session_scope(settings.database_url) as s:
        key = create_api_key(s, distributor=s.merge(tenant), label="billing")
        instance_id = s.exec(
            select(Instance.id).where(Instance.distributor_id == tenant.id, Instance.name == "main")
        ).one()
    app = create_app(settings)
    sent: list[str] = []
    app.extensions["bss.send"] = sent.append
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    drifted = drifted_customer(settings.database_url, instance_id)
    return client, headers, sent, drifted


def _other_distributors_drift(settings) -> str:
    with session_scope(settings.database_url) as s:
        other = create_distributor(s, name=f"Other {uuid.uuid4().hex[:6]}")
        instance = create_instance(
            s,
            vault=vault_from_settings(settings),
            distributor=other,
            name="theirs",
            client_id=CLIENT_ID,
            client_secret="x",
        )
        instance_id = instance.id
    return drifted_customer(settings.database_url, instance_id).drift_id


def test_a_customer_as_google_has_it_by_domain_or_id(billing):
    client, headers, _, drifted = billing
    for key in (drifted.domain, drifted.domain.upper(), drifted.customer_id):
        resp = client.get(f"/api/v1/customers/{key}", headers=headers)
        assert resp.status_code == 200, resp.text
        body = resp.get_json()
        assert (body["customer_id"], body["customer_domain"]) == (
            drifted.customer_id,
            drifted.domain,
        )
        assert body["status"] == "active" and body["confirmed_at"].endswith("Z")
        assert body["subscriptions"] == 1 and body["open_drift"] == 1
        assert body["subscriptions_url"].endswith(
            f"/api/v1/customers/{drifted.customer_id}/subscriptions"
        )


def test_a_customer_nobody_of_ours_has_seen_is_404(billing, settings):
    client, headers, _, _ = billing
    resp = client.get("/api/v1/customers/nobody.example", headers=headers)
    assert resp.status_code == 404 and "nobody.example" in resp.get_json()["error"]["message"]
    # Another distributor's customer is as unknown as one nobody has
    other = _other_distributors_drift(settings)
    with session_scope(settings.database_url) as s:
        domain = s.get(Drift, other).customer_domain
    assert client.get(f"/api/v1/customers/{domain}", headers=headers).status_code == 404


def test_subscriptions_show_googles_seats_and_the_open_difference(billing):
    client, headers, _, drifted = billing
    resp = client.get(f"/api/v1/customers/{drifted.domain}/subscriptions", headers=headers)
    assert resp.status_code == 200, resp.text
    [sub] = resp.get_json()["subscriptions"]
    assert (sub["sku_id"], sub["plan"], sub["seats"], sub["status"]) == (
        "1010020027",
        "FLEXIBLE",
        9,
        "ACTIVE",
    )
    assert sub["open_drift"] == 1


def test_open_drift_lists_both_values_and_the_job_that_set_ours(billing, settings):
    client, headers, _, drifted = billing
    theirs = _other_distributors_drift(settings)
    resp = client.get("/api/v1/drift", headers=headers)
    assert resp.status_code == 200, resp.text
    rows = resp.get_json()["drift"]
    assert theirs not in {r["id"] for r in rows}
    [row] = [r for r in rows if r["id"] == drifted.drift_id]
    assert (row["field"], row["desired"], row["actual"]) == ("seats", 5, 9)
    assert row["desired_job_id"] == drifted.job_id and row["instance"] == "main"
    # Filtered by customer and field; a field that does not exist is refused in words
    only = client.get(
        f"/api/v1/drift?customer={drifted.domain}&field=seats", headers=headers
    ).get_json()["drift"]
    assert [r["id"] for r in only] == [drifted.drift_id]
    assert client.get("/api/v1/drift?field=plan", headers=headers).get_json()["drift"] == []
    bad = client.get("/api/v1/drift?field=colour", headers=headers)
    assert bad.status_code == 422 and "field" in str(bad.get_json()["error"]["details"])
    assert client.get("/api/v1/drift?instance=nope", headers=headers).status_code == 404


def _open(settings, drift_id):
    with session_scope(settings.database_url) as s:
        row = s.get(Drift, drift_id)
        s.expunge(row)
        return row


def test_accepting_makes_googles_value_the_order_and_leaves_nothing_open(billing, settings):
    client, headers, sent, drifted = billing
    resp = client.post(
        f"/api/v1/drift/{drifted.drift_id}/resolve", json={"action": "accept"}, headers=headers
    )
    assert resp.status_code == 200, resp.text
    body = resp.get_json()
    assert body["drift"]["state"] == "resolved" and body["drift"]["resolution"] == "accepted"
    assert body["job_id"] is None and sent == []
    with session_scope(settings.database_url) as s:
        desired = s.exec(
            select(DesiredSubscription).where(
                DesiredSubscription.customer_id == drifted.customer_id
            )
        ).one()
        assert desired.seats == 9 and desired.set_by_job_id is None
    listed = client.get(f"/api/v1/drift?customer={drifted.domain}", headers=headers).get_json()
    assert listed["drift"] == []
    # Resolving it again is refused, and changes nothing
    again = client.post(
        f"/api/v1/drift/{drifted.drift_id}/resolve", json={"action": "restore"}, headers=headers
    )
    assert again.status_code == 409
    assert _open(settings, drifted.drift_id).resolution == "accepted"


def test_restoring_submits_the_job_that_puts_our_seats_back(billing, settings):
    client, headers, sent, drifted = billing
    resp = client.post(
        f"/api/v1/drift/{drifted.drift_id}/resolve", json={"action": "restore"}, headers=headers
    )
    assert resp.status_code == 202, resp.text
    body = resp.get_json()
    assert body["drift"]["resolution"] == "restored" and body["job_id"]
    assert body["job_url"].endswith(f"/api/v1/jobs/{body['job_id']}")
    assert sent == [body["job_id"]]  # handed to the workers after commit
    job = client.get(f"/api/v1/jobs/{body['job_id']}", headers=headers).get_json()
    assert job["operation"] == "subscription.change_seats" and job["params"]["seats"] == 5
    assert client.get("/api/v1/drift", headers=headers).get_json()["drift"] == []


def test_another_distributors_drift_is_404_and_stays_open(billing, settings):
    client, headers, sent, _ = billing
    theirs = _other_distributors_drift(settings)
    for path in (f"/api/v1/drift/{theirs}", f"/api/v1/drift/{theirs}/resolve"):
        resp = (
            client.post(path, json={"action": "accept"}, headers=headers)
            if path.endswith("resolve")
            else client.get(path, headers=headers)
        )
        assert resp.status_code == 404
    assert _open(settings, theirs).state == "open" and sent == []


def test_an_unknown_action_is_refused_in_words(billing, settings):
    client, headers, _, drifted = billing
    resp = client.post(
        f"/api/v1/drift/{drifted.drift_id}/resolve", json={"action": "ignore"}, headers=headers
    )
    assert resp.status_code == 422 and "action" in str(resp.get_json()["error"]["details"])
    assert _open(settings, drifted.drift_id).state == "open"


def test_the_api_document_has_customers_and_drift_with_examples(settings):
    doc = create_app(settings).test_client().get("/api/v1/openapi.json").get_json()
    for path in (
        "/api/v1/customers/{customer}",
        "/api/v1/customers/{customer}/subscriptions",
        "/api/v1/drift",
        "/api/v1/drift/{drift_id}",
        "/api/v1/drift/{drift_id}/resolve",
    ):
        assert path in doc["paths"], path
    resolve = doc["paths"]["/api/v1/drift/{drift_id}/resolve"]["post"]
    examples = resolve["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == {"accept", "restore"}
    assert {"CustomerPublic", "DriftPublic", "SubscriptionPublic"} <= set(
        doc["components"]["schemas"]
    )
