"""Reconciling an instance with Google (the sandbox over HTTP): changes no notification told us
are found, drift opened and cleared, billing told once, customers that left us marked, in a few
paged calls; a Google failure is recorded and applies nothing."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import select

from bss.db import session_scope
from bss.errors import GoogleError
from bss.events import reconcile
from bss.models import CustomerMirror, Drift, Instance, WebhookDelivery
from tests.support.reseller_notify import (
    billing_set_seats,
    console,
    customer,
    events_settings,
    instance_of,
    new_reseller,
    post,
)


def _events(settings, ids: list[str]) -> list[str]:
    with session_scope(settings.database_url) as s:
        rows = s.exec(select(WebhookDelivery).where(WebhookDelivery.id.in_(ids))).all()
        return sorted(r.event for r in rows)


def test_a_seat_change_no_event_told_us_becomes_drift_then_clears(settings, sandbox, redis_url):
    # Given a customer billing ordered 5 seats for, mirrored by a first reconciliation
    s = events_settings(settings, sandbox, None, REDIS_URL=redis_url)
    reseller = new_reseller(sandbox)
    instance_id = instance_of(s, reseller)
    domain = f"acme-{uuid.uuid4().hex[:6]}.example"
    made = customer(reseller, domain, seats=5)
    job_id = billing_set_seats(s, instance_id, made, 5)
    first = reconcile(s, instance_id)
    assert first.missed == [] and first.drift == [] and first.customers == 1
    # When its admin raises the seats to 9 in the Admin console, with no notifications on
    console(sandbox, domain, {"seats": 9})
    sent: list[str] = []
    found = reconcile(s, instance_id, send_webhook=sent.append)
    # Then the reconciliation reports the change, opens drift against billing's job, and
    # billing hears of both
    assert [(c.customer_domain, c.field, c.before, c.after) for c in found.missed] == [
        (domain, "seats", 5, 9)
    ]
    [drift] = found.drift
    assert (drift.field, drift.desired, drift.actual, drift.desired_job_id) == (
        "seats",
        5,
        9,
        job_id,
    )
    assert found.opened == 1 and found.cleared == 0
    assert _events(s, sent) == ["subscription.changed", "subscription.drifted"]
    assert found.calls_by_method == {"reseller.subscriptions.list": 1}
    # And the instance records it for the dashboard and `bss doctor`
    with session_scope(s.database_url) as db:
        instance = db.get(Instance, instance_id)
        assert instance.last_reconcile["missed"] == 1 and instance.last_reconcile["drift"] == 1
        assert instance.last_reconciled_at is not None
    # When nothing changed since, a second run tells nobody anything
    again: list[str] = []
    quiet = reconcile(s, instance_id, send_webhook=again.append)
    assert quiet.missed == [] and quiet.opened == 0 and len(quiet.drift) == 1 and again == []
    # When Google comes back to billing's 5 seats, the drift clears
    console(sandbox, domain, {"seats": 5})
    back = reconcile(s, instance_id)
    assert back.drift == [] and back.cleared == 1
    with session_scope(s.database_url) as db:
        row = db.get(Drift, drift.id)
        assert (row.state, row.resolution) == ("resolved", "cleared")


def test_a_customer_transferred_away_is_marked_and_billing_told(settings, sandbox):
    s = events_settings(settings, sandbox, None)
    reseller = new_reseller(sandbox)
    instance_id = instance_of(s, reseller)
    domain = f"leaving-{uuid.uuid4().hex[:6]}.example"
    customer(reseller, domain, seats=3)
    reconcile(s, instance_id)
    console(sandbox, domain, {"transfer_to": "direct"})
    sent: list[str] = []
    found = reconcile(s, instance_id, send_webhook=sent.append)
    assert [(c.field, c.before, c.after) for c in found.missed] == [
        ("exists", True, "transferred_away")
    ]
    assert "customer.transferred_away" in _events(s, sent)
    assert found.calls_by_method["reseller.customers.get"] == 1
    with session_scope(s.database_url) as db:
        mirror = db.exec(
            select(CustomerMirror).where(CustomerMirror.instance_id == instance_id)
        ).one()
        assert mirror.status == "transferred_away" and mirror.subscriptions == []


def test_many_customers_take_one_call_per_hundred(settings, sandbox):
    s = events_settings(settings, sandbox, None)
    reseller = new_reseller(sandbox)
    instance_id = instance_of(s, reseller)
    tag = uuid.uuid4().hex[:6]
    for n in range(250):
        customer(reseller, f"c{n}-{tag}.example", seats=1 + n % 7)
    sent: list[str] = []
    report = reconcile(s, instance_id, send_webhook=sent.append)
    assert report.subscriptions == 250 and report.customers == 250
    assert report.calls == 3 and report.calls_by_method == {"reseller.subscriptions.list": 3}
    # The first look at 250 customers floods nobody: billing hears of changes, not of a first
    # sighting
    assert sent == [] and report.missed == []
    console_change = f"c3-{tag}.example"
    console(sandbox, console_change, {"seats": 9})
    after: list[str] = []
    reconcile(s, instance_id, send_webhook=after.append)
    assert _events(s, after) == ["subscription.changed"]


def test_a_google_failure_is_recorded_and_applies_nothing(settings, sandbox):
    s = events_settings(settings, sandbox, None)
    reseller = new_reseller(sandbox)
    instance_id = instance_of(s, reseller)
    customer(reseller, f"x-{uuid.uuid4().hex[:6]}.example")
    post(
        sandbox,
        "/_sandbox/faults",
        {"method": "reseller.subscriptions.list", "kind": "error", "status": 503, "times": 5},
    )
    with pytest.raises(GoogleError):
        reconcile(s, instance_id)
    with session_scope(s.database_url) as db:
        instance = db.get(Instance, instance_id)
        assert instance.last_reconcile["error"].startswith("Reading Google failed")
        mirrored = db.exec(
            select(CustomerMirror).where(CustomerMirror.instance_id == instance_id)
        ).all()
        assert mirrored == []
