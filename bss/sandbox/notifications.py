"""Reseller API push notifications: resellernotify.* and the events published on the topic.

``resellernotify.register`` makes the reseller's topic, ``projects/partner-watch/topics/<the
reseller's customer id>`` (Google's documented example is ``projects/partner-watch/topics/
C0abcdefg``), and lets the service account subscribe to it; calling it again adds accounts.
``unregister`` removes one; with none left, nothing more is published on the topic (existing
Pub/Sub subscriptions keep what they hold).

Event types are the vocabulary of Google's documented entitlement events (Cloud Channel API
``EntitlementEvent.Type``); the payload uses the Reseller API's own field names. Every change
to a subscription of a registered reseller publishes one event: see ``subscription_event``.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from bss.sandbox import pubsub
from bss.sandbox.api import api_method, ok
from bss.sandbox.clock import rfc3339
from bss.sandbox.customers import acting_reseller
from bss.sandbox.errors import bad_request
from bss.sandbox.state import State, current_state

bp = Blueprint("notifications", __name__, url_prefix="/apps/reseller/v1/resellernotify")

#: The Google project that owns every reseller topic, as in Google's example topic name.
TOPIC_PROJECT = "partner-watch"

#: Event types (Google's entitlement-event names) and when the sandbox publishes them.
EVENT_TYPES = {
    "CREATED": "subscriptions.insert, or a transfer brings the subscription to this reseller",
    "PRICE_PLAN_SWITCHED": "changePlan, or a plan change in the Admin console",
    "COMMITMENT_CHANGED": "numberOfSeats of an annual plan changed",
    "LICENSE_CAP_CHANGED": "maximumNumberOfSeats of a FLEXIBLE or TRIAL plan changed",
    "RENEWED": "an annual commitment ended and renewed (also into FLEXIBLE)",
    "SUSPENDED": "suspended: by the reseller, by Google (OTHER), or a TRIAL plan's trial ended",
    "ACTIVATED": "a suspension was lifted and the subscription is ACTIVE",
    "CANCELLED": "deleted, cancelled at renewal, or transferred away (see cancellationReason)",
    "SKU_CHANGED": "subscriptions.insert switched SKUs (action=switch / sourceSkuId)",
    "RENEWAL_SETTING_CHANGED": "changeRenewalSettings, or the renewal type set in the console",
    "PAID_SERVICE_STARTED": "startPaidService, or a paid plan's free trial ended",
}


def topic_name(reseller: dict) -> str:
    return f"projects/{TOPIC_PROJECT}/topics/{reseller['customer_id']}"


def seats_event(subscription: dict) -> str:
    """The event a seat change publishes: the commitment (annual) or the license cap."""
    return (
        "COMMITMENT_CHANGED" if subscription["plan"]["isCommitmentPlan"] else "LICENSE_CAP_CHANGED"
    )


def subscription_event(
    state: State,
    subscription: dict,
    event_type: str,
    *,
    at: float | None = None,
    reseller: str | None = None,
    previous_id: str | None = None,
    cancellation_reason: str | None = None,
) -> str | None:
    """Publish ``event_type`` for the subscription on its reseller's topic, if registered.

    ``at`` is the event time (sandbox epoch seconds; now by default), ``reseller`` the domain
    to tell (the subscription's own by default); the messageId, or None when nobody listens.
    """
    assert event_type in EVENT_TYPES, event_type
    domain = reseller or subscription.get("_reseller")
    watch = state.watches.get(domain or "")
    if watch is None or not watch["service_accounts"]:
        return None
    when = state.clock.now() if at is None else at
    data = {
        "eventType": event_type,
        "eventTime": rfc3339(when),
        "customerId": subscription["customerId"],
        "customerDomain": subscription["customerDomain"],
        "subscriptionId": subscription["subscriptionId"],
        "skuId": subscription["skuId"],
        "skuName": subscription.get("skuName"),
        "productId": subscription.get("_product"),
        "planName": subscription["plan"]["planName"],
        "status": subscription["status"],
    }
    if previous_id:
        data["previousSubscriptionId"] = previous_id
    if cancellation_reason:
        data["cancellationReason"] = cancellation_reason
    attributes = {k: str(data[k]) for k in ("eventType", "customerId", "subscriptionId", "skuId")}
    return pubsub.publish(state, watch["topic"], data, attributes)


# -- resellernotify.* ---------------------------------------------------------------------


def _service_account(state: State) -> str:
    email = (request.args.get("serviceAccountEmailAddress") or "").strip().lower()
    if not email:
        raise bad_request("Required parameter: serviceAccountEmailAddress", reason="required")
    known = any(
        c["kind"] == "service_account" and c["client_email"] == email
        for c in state.clients.values()
    )
    if not known:
        raise bad_request(f"Invalid Value: serviceAccountEmailAddress {email}")
    return email


@bp.post("/register")
@api_method("reseller.resellernotify.register")
def register() -> Response:
    state = current_state()
    reseller = acting_reseller(state)
    email = _service_account(state)
    watch = state.watches.get(reseller["domain"])
    if watch is None:
        watch = {"topic": topic_name(reseller), "service_accounts": []}
        state.watches[reseller["domain"]] = watch
    if email not in watch["service_accounts"]:
        watch["service_accounts"].append(email)
    return ok({"topicName": watch["topic"]})


@bp.post("/unregister")
@api_method("reseller.resellernotify.unregister")
def unregister() -> Response:
    state = current_state()
    reseller = acting_reseller(state)
    email = _service_account(state)
    watch = state.watches.get(reseller["domain"])
    if watch is None or email not in watch["service_accounts"]:
        raise bad_request(f"Invalid Value: {email} is not registered for notifications")
    watch["service_accounts"].remove(email)
    return ok({"topicName": watch["topic"]})


@bp.get("/getwatchdetails")
@api_method("reseller.resellernotify.getwatchdetails")
def getwatchdetails() -> Response:
    state = current_state()
    reseller = acting_reseller(state)
    watch = state.watches.get(reseller["domain"])
    if watch is None:
        return ok({})
    answer: dict = {"topicName": watch["topic"]}
    if watch["service_accounts"]:
        answer["serviceAccountEmailAddresses"] = list(watch["service_accounts"])
    return ok(answer)
