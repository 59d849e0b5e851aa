"""What the sandbox clock does to subscriptions: trials end, annual commitments renew.

``sweep`` runs after each ``POST /_sandbox/clock``, so each change happens, and its event is
published, at the moment the clock passes it (the event time is that moment, not the call's).
At the end of an annual commitment (``plan.commitmentInterval.endTime``) the renewal type
decides: AUTO_RENEW_* renews for a year with the same seats (on the monthly or yearly plan the
type names), RENEW_CURRENT_USERS_* renews with numberOfSeats = the licenses assigned,
SWITCH_TO_PAY_AS_YOU_GO moves to FLEXIBLE (maximumNumberOfSeats = the committed seats), and
CANCEL suspends it with RENEWAL_WITH_TYPE_CANCEL.
"""

from __future__ import annotations

from bss.sandbox import catalog
from bss.sandbox.model import age, licensed_count, suspend
from bss.sandbox.notifications import subscription_event
from bss.sandbox.state import State

#: The annual plan each renewal type renews into.
RENEWS_INTO = {
    "AUTO_RENEW_MONTHLY_PAY": "ANNUAL_MONTHLY_PAY",
    "AUTO_RENEW_YEARLY_PAY": "ANNUAL_YEARLY_PAY",
    "RENEW_CURRENT_USERS_MONTHLY_PAY": "ANNUAL_MONTHLY_PAY",
    "RENEW_CURRENT_USERS_YEARLY_PAY": "ANNUAL_YEARLY_PAY",
}


def sweep(state: State) -> None:
    """End the trials and commitments the sandbox clock has passed, oldest first."""
    now_ms = state.clock.now_ms()
    for subscription in sorted(state.subscriptions.values(), key=lambda s: s["_seq"]):
        _end_trial(state, subscription, now_ms)
        # A long jump of the clock may pass several anniversaries.
        while _renew(state, subscription, now_ms):
            pass


def _end_trial(state: State, subscription: dict, now_ms: int) -> None:
    trial = subscription.get("trialSettings") or {}
    if not trial.get("isInTrial") or int(trial["trialEndTime"]) > now_ms:
        return
    ended = int(trial["trialEndTime"]) / 1000
    age(state, subscription)
    kind = "SUSPENDED" if subscription["_plan"] == "TRIAL" else "PAID_SERVICE_STARTED"
    subscription_event(state, subscription, kind, at=ended)


def _renew(state: State, subscription: dict, now_ms: int) -> bool:
    """Renew (or end) one commitment that ended by ``now_ms``; whether one did."""
    plan = subscription["plan"]
    interval = plan.get("commitmentInterval")
    if not plan.get("isCommitmentPlan") or not interval or subscription["status"] != "ACTIVE":
        return False
    end_ms = int(interval["endTime"])
    if end_ms > now_ms:
        return False
    at = end_ms / 1000
    renewal = (subscription.get("renewalSettings") or {}).get("renewalType")
    if renewal == "CANCEL":
        suspend(subscription, "RENEWAL_WITH_TYPE_CANCEL")
        subscription_event(
            state, subscription, "CANCELLED", at=at, cancellation_reason="SERVICE_TERMINATED"
        )
        return False
    seats = subscription["seats"]
    if renewal == "SWITCH_TO_PAY_AS_YOU_GO":
        subscription["_plan"] = "FLEXIBLE"
        subscription["plan"] = {"planName": "FLEXIBLE", "isCommitmentPlan": False}
        subscription["seats"] = {
            "kind": "subscriptions#seats",
            "maximumNumberOfSeats": seats.get("numberOfSeats", 1),
        }
        subscription.pop("renewalSettings", None)
        subscription_event(state, subscription, "RENEWED", at=at)
        return False
    into = RENEWS_INTO.get(renewal or "", subscription["_plan"])
    count = seats.get("numberOfSeats", 1)
    if renewal and renewal.startswith("RENEW_CURRENT_USERS"):
        licensed = licensed_count(state, subscription["customerId"], subscription["skuId"])
        count = max(licensed, 1)
    subscription["_plan"] = into
    subscription["seats"] = {"kind": "subscriptions#seats", "numberOfSeats": count}
    subscription["plan"] = {
        "planName": catalog.PLAN_READ_AS.get(into, into),
        "isCommitmentPlan": True,
        "commitmentInterval": {"startTime": str(end_ms), "endTime": str(end_ms + catalog.YEAR_MS)},
    }
    subscription_event(state, subscription, "RENEWED", at=at)
    return True
