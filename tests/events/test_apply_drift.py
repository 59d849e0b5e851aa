"""apply_subscription, the desired state and drift resolution, in process on a real database:
what billing hears of a change Google made, once, and what an operator can do about it."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from sqlmodel import Session, select

from bss.db import session_scope
from bss.errors import InvalidState, ValidationFailed
from bss.events import apply_subscription, list_drift, resolve_drift
from bss.models import (
    CustomerMirror,
    DesiredSubscription,
    Distributor,
    Drift,
    Instance,
    Job,
    JobState,
    WebhookDelivery,
    utcnow,
)
from bss.settings import Settings

SKU = "1010020027"


def google_sub(cid: str, domain: str, *, cap: int = 5, **changes: Any) -> dict[str, Any]:
    sub = {
        "customerId": cid,
        "customerDomain": domain,
        "subscriptionId": "123456789",
        "skuId": SKU,
        "status": "ACTIVE",
        "suspensionReasons": [],
        "plan": {"planName": "FLEXIBLE", "isCommitmentPlan": False},
        "seats": {"maximumNumberOfSeats": cap, "licensedNumberOfSeats": 0},
    }
    sub.update(changes)
    return sub


@pytest.fixture
def ordered(settings: Settings, tenant: Distributor) -> dict[str, Any]:
    """A customer billing ordered 5 FLEXIBLE seats for (a succeeded order.create), and a
    distributor with a webhook."""
    tag = uuid.uuid4().hex[:8]
    cid, domain = f"C0{tag}", f"shop-{tag}.example"
    with session_scope(settings.database_url) as s:
        d = s.get(Distributor, tenant.id)
        assert d is not None
        d.webhook_url = "https://billing.example/hook"
        s.add(d)
        instance = s.exec(select(Instance).where(Instance.distributor_id == tenant.id)).one()
        job = Job(
            distributor_id=d.id,
            instance_id=instance.id,
            operation="order.create",
            params={"customer": {"domain": domain}},
            request_hash="0" * 64,
            state=JobState.SUCCEEDED,
            finished_at=utcnow(),
            result={
                "customer_id": cid,
                "subscriptions": [
                    {
                        "subscription_id": "123456789",
                        "sku_id": SKU,
                        "status": "ACTIVE",
                        "plan": "FLEXIBLE",
                        "seats": 5,
                        "renewal_type": None,
                    }
                ],
            },
        )
        s.add(job)
        return {"instance_id": instance.id, "cid": cid, "domain": domain, "job_id": job.id}


def apply(settings: Settings, o: dict[str, Any], sub: Any, customer: Any = None) -> list[Drift]:
    with session_scope(settings.database_url) as s:
        instance = s.get(Instance, o["instance_id"])
        assert instance is not None
        drifts = apply_subscription(
            s,
            settings,
            instance,
            customer_id=o["cid"],
            sku_id=SKU,
            google_sub=copy.deepcopy(sub),
            customer=customer,
            detected_by="event",
            event=None,
        )
        s.flush()
        for d in drifts:
            s.expunge(d)
        return drifts


def told(s: Session, o: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    rows = s.exec(
        select(WebhookDelivery)
        .where(WebhookDelivery.instance_id == o["instance_id"])
        .order_by(WebhookDelivery.created_at)  # type: ignore[arg-type]
    ).all()
    return [
        (r.event, r.payload["data"])
        for r in rows
        if o["cid"] == r.payload["data"].get("customer_id")
    ]


def open_drift(settings: Settings, o: dict[str, Any]) -> list[Drift]:
    with session_scope(settings.database_url) as s:
        rows, _ = list_drift(s, distributor_id=None, customer=o["domain"])
        return rows


def test_a_console_seat_change_is_told_once_and_is_drift_until_google_comes_back(
    settings: Settings, ordered: dict[str, Any]
) -> None:
    # Given Google holds what billing ordered
    assert apply(settings, ordered, google_sub(ordered["cid"], ordered["domain"])) == []
    # When the customer's admin raises the seats to 7 in the Admin console
    drifts = apply(settings, ordered, google_sub(ordered["cid"], ordered["domain"], cap=7))
    # Then billing hears subscription.changed (5 → 7) and subscription.drifted, once
    assert [(d.field, d.desired, d.actual, d.desired_job_id) for d in drifts] == [
        ("seats", 5, 7, ordered["job_id"])
    ]
    with session_scope(settings.database_url) as s:
        events = told(s, ordered)
    assert [e for e, _ in events] == [
        "subscription.changed",
        "subscription.changed",
        "subscription.drifted",
    ]
    change = events[1][1]
    assert (change["before"]["seats"], change["after"]["seats"]) == (5, 7)
    # And the same news again (a duplicate, a late event) tells nothing more
    apply(settings, ordered, google_sub(ordered["cid"], ordered["domain"], cap=7))
    with session_scope(settings.database_url) as s:
        assert len(told(s, ordered)) == 3
    assert len(open_drift(settings, ordered)) == 1
    # When Google comes back to 5 seats, the difference clears by itself
    cleared = apply(settings, ordered, google_sub(ordered["cid"], ordered["domain"]))
    assert [(d.state, d.resolution) for d in cleared] == [("resolved", "cleared")]
    assert open_drift(settings, ordered) == []


def test_accepting_makes_googles_value_what_billing_wants(
    settings: Settings, ordered: dict[str, Any]
) -> None:
    [drift] = apply(settings, ordered, google_sub(ordered["cid"], ordered["domain"], cap=7))
    with session_scope(settings.database_url) as s:
        resolved, job_id = resolve_drift(
            s, settings, drift.id, distributor_id=drift.distributor_id, action="accept", actor="ops"
        )
        assert (resolved.resolution, job_id) == ("accepted", None)
    with session_scope(settings.database_url) as s:
        desired = s.exec(
            select(DesiredSubscription).where(DesiredSubscription.customer_id == ordered["cid"])
        ).one()
        assert desired.seats == 7
    # Google's 7 seats are no longer a difference
    assert apply(settings, ordered, google_sub(ordered["cid"], ordered["domain"], cap=7)) == []
    assert open_drift(settings, ordered) == []


def test_restoring_submits_the_job_that_puts_ours_back(
    settings: Settings, ordered: dict[str, Any]
) -> None:
    [drift] = apply(settings, ordered, google_sub(ordered["cid"], ordered["domain"], cap=7))
    with session_scope(settings.database_url) as s:
        resolved, job_id = resolve_drift(
            s, settings, drift.id, distributor_id=None, action="restore", actor="ops@platform"
        )
        assert resolved.resolution == "restored" and resolved.resolution_job_id == job_id
        job = s.get(Job, job_id)
        assert job is not None
        assert job.operation == "subscription.change_seats"
        assert job.params == {"customer": ordered["domain"], "sku_id": SKU, "seats": 5}
        assert job.idempotency_key == f"drift-restore-{drift.id}"
    assert open_drift(settings, ordered) == []
    # While that job is on its way, Google's 7 seats are not drift again
    assert apply(settings, ordered, google_sub(ordered["cid"], ordered["domain"], cap=7)) == []
    # And a drift cannot be resolved twice
    with session_scope(settings.database_url) as s, pytest.raises(InvalidState, match="resolved"):
        resolve_drift(s, settings, drift.id, distributor_id=None, action="accept", actor="x")


def test_a_transfer_away_marks_the_customer_and_cannot_be_restored(
    settings: Settings, ordered: dict[str, Any]
) -> None:
    apply(settings, ordered, google_sub(ordered["cid"], ordered["domain"]))
    # Google now shows only what it shows of another reseller's customer
    limited = {
        "customerId": ordered["cid"],
        "customerDomain": ordered["domain"],
        "customerType": "domain",
    }
    [drift] = apply(settings, ordered, None, customer=limited)
    assert (drift.field, drift.desired, drift.actual) == ("customer", "active", "transferred_away")
    with session_scope(settings.database_url) as s:
        mirror = s.exec(
            select(CustomerMirror).where(CustomerMirror.customer_id == ordered["cid"])
        ).one()
        assert mirror.status == "transferred_away" and mirror.subscriptions == []
        assert [e for e, _ in told(s, ordered)][-3:] == [
            "subscription.changed",
            "customer.transferred_away",
            "subscription.drifted",
        ]
    with session_scope(settings.database_url) as s, pytest.raises(InvalidState, match="transfer"):
        resolve_drift(s, settings, drift.id, distributor_id=None, action="restore", actor="x")
    assert len(open_drift(settings, ordered)) == 1  # refused: nothing changed


def test_a_renewal_with_type_cancel_ends_as_billing_ordered(
    settings: Settings, ordered: dict[str, Any]
) -> None:
    annual = {
        "plan": {
            "planName": "ANNUAL",
            "isCommitmentPlan": True,
            "commitmentInterval": {"startTime": "1", "endTime": "2"},
        },
        "seats": {"numberOfSeats": 5},
        "renewalSettings": {"renewalType": "CANCEL"},
    }
    with session_scope(settings.database_url) as s:
        s.add(
            DesiredSubscription(
                instance_id=ordered["instance_id"],
                customer_id=ordered["cid"],
                sku_id=SKU,
                seats=5,
                plan="ANNUAL_MONTHLY_PAY",
                renewal="CANCEL",
                status="ACTIVE",
                set_at=utcnow(),
            )
        )
    apply(settings, ordered, google_sub(ordered["cid"], ordered["domain"], **annual))
    ended = google_sub(
        ordered["cid"],
        ordered["domain"],
        status="SUSPENDED",
        suspensionReasons=["RENEWAL_WITH_TYPE_CANCEL"],
        **annual,
    )
    assert apply(settings, ordered, ended) == []  # what billing asked for: not drift
    with session_scope(settings.database_url) as s:
        events = told(s, ordered)
    assert [e for e, _ in events][-2:] == ["subscription.changed", "subscription.suspended"]
    assert events[-1][1]["reasons"] == ["RENEWAL_WITH_TYPE_CANCEL"]


def test_a_bad_drift_filter_is_refused_with_every_problem(settings: Settings) -> None:
    with session_scope(settings.database_url) as s, pytest.raises(ValidationFailed) as refused:
        list_drift(s, distributor_id=None, state="closed", field="colour", limit=0)
    assert [d["field"] for d in refused.value.details] == ["state", "field", "limit"]
