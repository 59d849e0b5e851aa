"""Subscription operations, each checked against Google's seat and plan rules before calling."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from bss.errors import PermanentGoogleError
from bss.operations import rules
from bss.operations.base import Operation, Params, StepContext
from bss.operations.common import (
    ANNUAL_PLANS,
    TRIAL_MAX_SEATS,
    CustomerRef,
    PurchaseOrderId,
    SkuId,
    claim,
    created_since_accepted,
    customer_id,
    find_subscription,
    plan_of,
    refuse,
    require_active,
    require_subscription,
    seats_of,
    sku_name,
    subscription_summary,
    tried_before,
)

Plan = Literal["ANNUAL_MONTHLY_PAY", "ANNUAL_YEARLY_PAY", "FLEXIBLE", "TRIAL"]
PaidPlan = Literal["ANNUAL_MONTHLY_PAY", "ANNUAL_YEARLY_PAY", "FLEXIBLE"]
RenewalType = Literal[
    "AUTO_RENEW_MONTHLY_PAY",
    "AUTO_RENEW_YEARLY_PAY",
    "RENEW_CURRENT_USERS_MONTHLY_PAY",
    "RENEW_CURRENT_USERS_YEARLY_PAY",
    "SWITCH_TO_PAY_AS_YOU_GO",
    "CANCEL",
]
Seats = Field(ge=1, le=50000, description="Absolute seat count (never an increment)")


def seats_body(plan: str, seats: int) -> dict[str, int]:
    """Annual plans count committed seats; flexible and trial plans a maximum."""
    return {"numberOfSeats" if plan in ANNUAL_PLANS else "maximumNumberOfSeats": seats}


class SubscriptionRef(Params):
    customer: CustomerRef
    sku_id: SkuId


class SubscriptionTerms(Params):
    """What to buy: a SKU on a plan with a number of seats."""

    sku_id: SkuId
    plan: Plan = "FLEXIBLE"
    seats: int = Seats
    purchase_order_id: PurchaseOrderId | None = None
    deal_code: str | None = Field(default=None, max_length=100)
    renewal_type: RenewalType | None = Field(
        default=None, description="Annual plans only: what happens at the end of the commitment"
    )

    @staticmethod
    def cross_checks(data: dict[str, Any], at: str = "") -> list[rules.Problem]:
        return rules.plan_seats(data, at)

    def to_google(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "skuId": self.sku_id,
            "plan": {"planName": self.plan},
            "seats": seats_body(self.plan, self.seats),
        }
        if self.purchase_order_id:
            body["purchaseOrderId"] = self.purchase_order_id
        if self.deal_code:
            body["dealCode"] = self.deal_code
        if self.renewal_type:
            body["renewalSettings"] = {"renewalType": self.renewal_type}
        return body


class SubscriptionCreate(SubscriptionTerms):
    customer: CustomerRef


def _as_we_wrote(ctx: StepContext, sub: dict[str, Any], p: SubscriptionTerms) -> bool:
    """Whether Google's subscription was made after this job was accepted, with its PO id."""
    return created_since_accepted(ctx, sub.get("creationTime")) and (
        not p.purchase_order_id or sub.get("purchaseOrderId") == p.purchase_order_id
    )


def create_subscription(
    ctx: StepContext, cid: str, ref: str, p: SubscriptionTerms, *, step: str = "subscription"
) -> dict[str, Any]:
    """The customer's subscription to the SKU: found (not bought twice), or inserted.

    Found after an earlier attempt of `step` may have bought it (see `claim`), and made after the
    job was accepted: it is this job's, `created` although the insert's answer was lost.
    """
    existing = find_subscription(ctx, cid, p.sku_id)
    if existing is not None:
        ours = tried_before(ctx, step) and _as_we_wrote(ctx, existing, p)
        ctx.log(
            f"{ref} already has {sku_name(p.sku_id)}"
            + (
                "; this job bought it before its answer was lost."
                if ours
                else "; not buying it twice."
            )
        )
        return dict(subscription_summary(existing), created=ours)
    try:
        created = ctx.gateway.call(
            "reseller.subscriptions.insert",
            lambda svc: svc.subscriptions().insert(customerId=cid, body=p.to_google()),
        )
    except PermanentGoogleError as exc:
        existing = find_subscription(ctx, cid, p.sku_id) if exc.status == 409 else None
        if existing is None:
            raise
        # Possibly an earlier attempt's insert, applied by Google after we stopped waiting.
        ours = tried_before(ctx, step) and _as_we_wrote(ctx, existing, p)
        ctx.log(
            f"{ref} got {sku_name(p.sku_id)} meanwhile"
            + ("; an earlier attempt of this job bought it." if ours else "; not buying it twice.")
        )
        return dict(subscription_summary(existing), created=ours)
    return dict(subscription_summary(created), created=True)


def _create(ctx: StepContext) -> dict[str, Any]:
    p: SubscriptionCreate = ctx.params
    return create_subscription(ctx, customer_id(ctx, p.customer), p.customer, p)


SUBSCRIPTION_CREATE = Operation(
    name="subscription.create",
    summary="Buy a SKU for a customer (found by domain or id); never twice for one SKU.",
    params_model=SubscriptionCreate,
    steps=(claim("subscription"), ("subscription", _create)),
    result=lambda cp: cp["subscription"],
)


class ChangeSeats(SubscriptionRef):
    seats: int = Seats


def _change_seats(ctx: StepContext) -> dict[str, Any]:
    p: ChangeSeats = ctx.params
    cid = customer_id(ctx, p.customer)
    sub = require_subscription(ctx, cid, p.customer, p.sku_id)
    plan, current = plan_of(sub), seats_of(sub)
    require_active(sub, "change the seats")
    licensed = int((sub.get("seats") or {}).get("licensedNumberOfSeats") or 0)
    if current == p.seats:
        ctx.log(f"The subscription already has {p.seats} seats; nothing to change.")
        return dict(subscription_summary(sub), changed=False)
    if plan in ANNUAL_PLANS and current is not None and p.seats < current:
        raise refuse(
            f"An annual plan cannot go down from {current} to {p.seats} seats before renewal.",
            "Lower the seats at renewal (change_renewal with RENEW_CURRENT_USERS_*), or "
            "move the customer to FLEXIBLE at renewal.",
            reason="seatsBelowCommitment",
        )
    if plan == "TRIAL" and p.seats > TRIAL_MAX_SEATS:
        raise refuse(
            f"A trial has at most {TRIAL_MAX_SEATS} seats; {p.seats} asked.",
            "Start paid service (subscription.start_paid_service) or change the plan first.",
            reason="trialSeatLimit",
        )
    if plan not in ANNUAL_PLANS and p.seats < licensed:
        raise refuse(
            f"{licensed} users hold licenses for this SKU; the maximum cannot go below that "
            f"({p.seats} asked).",
            "Revoke licenses first (license.revoke), then lower the seats.",
            reason="seatsBelowLicensed",
        )
    changed = ctx.gateway.call(
        "reseller.subscriptions.changeSeats",
        lambda svc: svc.subscriptions().changeSeats(
            customerId=cid, subscriptionId=sub["subscriptionId"], body=seats_body(plan, p.seats)
        ),
    )
    return dict(subscription_summary(changed), changed=True)


SUBSCRIPTION_CHANGE_SEATS = Operation(
    name="subscription.change_seats",
    summary="Set a subscription's seats (an absolute count, checked against the plan's rules).",
    params_model=ChangeSeats,
    steps=(("subscription", _change_seats),),
    result=lambda cp: cp["subscription"],
)


class ChangePlan(SubscriptionRef):
    plan: PaidPlan
    seats: int | None = Field(default=None, ge=1, le=50000, description="Required for annual")
    purchase_order_id: PurchaseOrderId | None = None
    deal_code: str | None = Field(default=None, max_length=100)

    @staticmethod
    def cross_checks(data: dict[str, Any], at: str = "") -> list[rules.Problem]:
        return rules.annual_needs_seats(data, at) + rules.plan_seats(data, at)


def _change_plan(ctx: StepContext) -> dict[str, Any]:
    p: ChangePlan = ctx.params
    cid = customer_id(ctx, p.customer)
    sub = require_subscription(ctx, cid, p.customer, p.sku_id)
    current = plan_of(sub)
    require_active(sub, "change the plan")
    licensed = int((sub.get("seats") or {}).get("licensedNumberOfSeats") or 0)
    if current == p.plan:
        ctx.log(f"The subscription is already on {p.plan}; nothing to change.")
        return dict(subscription_summary(sub), changed=False)
    in_trial = (sub.get("trialSettings") or {}).get("isInTrial")
    if current in ANNUAL_PLANS and p.plan not in ANNUAL_PLANS and not in_trial:
        raise refuse(
            f"An annual commitment ({current}) cannot switch to {p.plan} before it ends.",
            "Set the renewal to SWITCH_TO_PAY_AS_YOU_GO (subscription.change_renewal).",
            reason="annualCommitment",
        )
    seats = p.seats or seats_of(sub) or licensed or 1
    if seats < licensed:
        raise refuse(
            f"{licensed} users hold licenses; the new plan needs at least that many seats.",
            "Ask for at least as many seats as licensed users, or revoke licenses first.",
            reason="seatsBelowLicensed",
        )
    body: dict[str, Any] = {"planName": p.plan, "seats": seats_body(p.plan, seats)}
    if p.purchase_order_id:
        body["purchaseOrderId"] = p.purchase_order_id
    if p.deal_code:
        body["dealCode"] = p.deal_code
    changed = ctx.gateway.call(
        "reseller.subscriptions.changePlan",
        lambda svc: svc.subscriptions().changePlan(
            customerId=cid, subscriptionId=sub["subscriptionId"], body=body
        ),
    )
    return dict(subscription_summary(changed), changed=True)


SUBSCRIPTION_CHANGE_PLAN = Operation(
    name="subscription.change_plan",
    summary="Move a subscription to another plan (annual commitments only at renewal).",
    params_model=ChangePlan,
    steps=(("subscription", _change_plan),),
    result=lambda cp: cp["subscription"],
)


class ChangeRenewal(SubscriptionRef):
    renewal_type: RenewalType


def _change_renewal(ctx: StepContext) -> dict[str, Any]:
    p: ChangeRenewal = ctx.params
    cid = customer_id(ctx, p.customer)
    sub = require_subscription(ctx, cid, p.customer, p.sku_id)
    require_active(sub, "change the renewal")
    if plan_of(sub) not in ANNUAL_PLANS:
        raise refuse(
            f"Renewal settings apply to annual plans; this subscription is {plan_of(sub)}.",
            "A flexible plan renews monthly by itself; cancel it to stop it.",
            reason="notAnnual",
        )
    if (sub.get("renewalSettings") or {}).get("renewalType") == p.renewal_type:
        ctx.log(f"The renewal is already {p.renewal_type}; nothing to change.")
        return dict(subscription_summary(sub), changed=False)
    changed = ctx.gateway.call(
        "reseller.subscriptions.changeRenewalSettings",
        lambda svc: svc.subscriptions().changeRenewalSettings(
            customerId=cid,
            subscriptionId=sub["subscriptionId"],
            body={"renewalType": p.renewal_type},
        ),
    )
    return dict(subscription_summary(changed), changed=True)


SUBSCRIPTION_CHANGE_RENEWAL = Operation(
    name="subscription.change_renewal",
    summary="Set what an annual subscription does at the end of its commitment.",
    params_model=ChangeRenewal,
    steps=(("subscription", _change_renewal),),
    result=lambda cp: cp["subscription"],
)


SUBSCRIPTION_OPERATIONS = (
    SUBSCRIPTION_CREATE,
    SUBSCRIPTION_CHANGE_SEATS,
    SUBSCRIPTION_CHANGE_PLAN,
    SUBSCRIPTION_CHANGE_RENEWAL,
)
