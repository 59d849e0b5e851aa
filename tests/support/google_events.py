"""What the web tests of Google's notifications set up at (sandbox) Google, over HTTP: the
platform's service account, a reseller registered for notifications, a Pub/Sub push
subscription to our endpoint, customers, and changes made "in the Admin console"."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from bss.db import session_scope
from bss.models import Instance, InstanceStatus, utcnow
from tests.support.portal import Google, sandbox_post, set_up_google

APPS_ORDER = "https://www.googleapis.com/auth/apps.order"
FLEXIBLE_STARTER = {"skuId": "1010020027", "planName": "FLEXIBLE", "seats": 5}


@dataclass
class Notifying:
    """A reseller registered for notifications, and the platform's service account."""

    google: Google
    key_file: Path
    email: str
    topic: str


def notifying_google(sandbox: str, base: str, home: Path) -> Notifying:
    """A reseller whose notifications the platform's service account may subscribe to."""
    google = set_up_google(sandbox, base)
    key = sandbox_post(
        sandbox, "/_sandbox/service-accounts", {"project": google.project, "name": "platform"}
    )
    key_file = home / "platform-service-account.json"
    key_file.write_text(json.dumps(key))
    token = sandbox_post(
        sandbox,
        "/_sandbox/tokens",
        {"client_id": google.client_id, "user": google.admin, "scopes": [APPS_ORDER]},
    )["access_token"]
    resp = requests.post(
        f"{sandbox}/apps/reseller/v1/resellernotify/register",
        params={"serviceAccountEmailAddress": key["client_email"]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return Notifying(google, key_file, key["client_email"], resp.json()["topicName"])


def push_to(sandbox: str, notifying: Notifying, endpoint: str, *, audience: str = "") -> str:
    """A push subscription on the reseller's topic to `endpoint`; its full name."""
    made = sandbox_post(
        sandbox,
        "/_sandbox/pubsub/subscriptions",
        {
            "topic": notifying.topic,
            "name": f"bss-{uuid.uuid4().hex[:8]}",
            "push_endpoint": endpoint,
            "audience": audience or endpoint,
            "service_account": notifying.email,
        },
    )
    return str(made["name"])


def knobs(sandbox: str, subscription: str, **values: Any) -> None:
    sandbox_post(sandbox, f"/_sandbox/pubsub/subscriptions/{subscription}", values)


def customer(sandbox: str, notifying: Notifying, domain: str, *subscriptions: dict) -> dict:
    """A customer of the reseller (made without publishing anything)."""
    return sandbox_post(
        sandbox,
        "/_sandbox/customers",
        {
            "customerDomain": domain,
            "reseller": notifying.google.reseller,
            "admin_email": f"admin@{domain}",
            "subscriptions": list(subscriptions or [FLEXIBLE_STARTER]),
        },
    )


def console(sandbox: str, domain: str, sku: str, change: dict[str, Any]) -> dict:
    """A change "in the Admin console": Google publishes its event."""
    path = f"/_sandbox/customers/{domain}/subscriptions/{sku}/console"
    return sandbox_post(sandbox, path, change)


def subscribed_instance(database_url: str, distributor_id: int, subscription: str) -> int:
    """An instance of ours registered for push through `subscription`."""
    with session_scope(database_url) as s:
        instance = Instance(
            distributor_id=distributor_id,
            name=f"notified-{uuid.uuid4().hex[:6]}",
            status=InstanceStatus.AUTHENTICATED,
            events_mode="push",
            events_subscription=subscription,
            events_registered_at=utcnow(),
        )
        s.add(instance)
        s.flush()
        assert instance.id is not None
        return instance.id


def google_subscription(customer_id: str, domain: str, seats: int, **extra: Any) -> dict:
    """A FLEXIBLE Business Starter subscription as Google's API returns it."""
    return {
        "kind": "reseller#subscription",
        "customerId": customer_id,
        "customerDomain": domain,
        "subscriptionId": f"sub-{customer_id}",
        "skuId": "1010020027",
        "skuName": "Google Workspace Business Starter",
        "status": "ACTIVE",
        "plan": {"planName": "FLEXIBLE", "isCommitmentPlan": False},
        "seats": {"maximumNumberOfSeats": seats, "licensedNumberOfSeats": 2},
        "renewalSettings": {"renewalType": "AUTO_RENEW_MONTHLY_PAY"},
        **extra,
    }


@dataclass
class Drifted:
    """A customer whose seats were changed at Google after billing's job set them."""

    instance_id: int
    customer_id: str
    domain: str
    job_id: str
    drift_id: str


def drifted_customer(
    database_url: str, instance_id: int, *, ordered: int = 5, at_google: int = 9
) -> Drifted:
    """What processing an Admin-console seat change leaves: the mirror as Google has it, the
    seats billing's succeeded job set, and the open drift between them."""
    from bss.models import CustomerMirror, DesiredSubscription, Drift, Job, JobState

    tag = uuid.uuid4().hex[:8]
    customer_id, domain = f"C0{tag}", f"drifted-{tag}.example"
    sub = google_subscription(customer_id, domain, at_google)
    with session_scope(database_url) as s:
        instance = s.get(Instance, instance_id)
        assert instance is not None
        job = Job(
            distributor_id=instance.distributor_id,
            instance_id=instance_id,
            operation="subscription.change_seats",
            params={"customer": domain, "sku_id": sub["skuId"], "seats": ordered},
            request_hash="0" * 64,
            state=JobState.SUCCEEDED,
            finished_at=utcnow(),
            result={"subscriptionId": sub["subscriptionId"], "skuId": sub["skuId"]},
        )
        s.add(job)
        s.add(
            CustomerMirror(
                instance_id=instance_id,
                customer_id=customer_id,
                domain=domain,
                customer={"customerId": customer_id, "customerDomain": domain},
                subscriptions=[sub],
                confirmed_at=utcnow(),
            )
        )
        s.add(
            DesiredSubscription(
                instance_id=instance_id,
                customer_id=customer_id,
                sku_id=sub["skuId"],
                subscription_id=sub["subscriptionId"],
                seats=ordered,
                plan="FLEXIBLE",
                status="ACTIVE",
                set_by_job_id=job.id,
                set_at=utcnow(),
            )
        )
        drift = Drift(
            distributor_id=instance.distributor_id,
            instance_id=instance_id,
            customer_id=customer_id,
            customer_domain=domain,
            subscription_id=sub["subscriptionId"],
            sku_id=sub["skuId"],
            field="seats",
            desired=ordered,
            actual=at_google,
            desired_job_id=job.id,
            detected_by="event",
        )
        s.add(drift)
        s.flush()
        return Drifted(instance_id, customer_id, domain, job.id, drift.id)
