"""Subscription lifecycle: suspend, activate, start paid service, cancel."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from bss.operations import rules
from bss.operations.base import Operation, Params, StepContext
from bss.operations.common import (
    WORKSPACE,
    customer_id,
    find_subscription,
    plan_of,
    product_of,
    refuse,
    require_active,
    require_subscription,
    sku_name,
    subscription_summary,
)
from bss.operations.subscription import SubscriptionRef


def _reasons(sub: dict[str, Any]) -> set[str]:
    return set(sub.get("suspensionReasons") or [])


def _suspend(ctx: StepContext) -> dict[str, Any]:
    p: SubscriptionRef = ctx.params
    cid = customer_id(ctx, p.customer)
    sub = require_subscription(ctx, cid, p.customer, p.sku_id)
    if sub.get("status") == "SUSPENDED" and "RESELLER_INITIATED" in _reasons(sub):
        ctx.log("The subscription is already suspended by us; nothing to change.")
        return dict(subscription_summary(sub), changed=False)
    done = ctx.gateway.call(
        "reseller.subscriptions.suspend",
        lambda svc: svc.subscriptions().suspend(
            customerId=cid, subscriptionId=sub["subscriptionId"]
        ),
    )
    return dict(subscription_summary(done), changed=True)


def _activate(ctx: StepContext) -> dict[str, Any]:
    p: SubscriptionRef = ctx.params
    cid = customer_id(ctx, p.customer)
    sub = require_subscription(ctx, cid, p.customer, p.sku_id)
    reasons = _reasons(sub)
    if sub.get("status") == "ACTIVE":
        ctx.log("The subscription is already active; nothing to change.")
        return dict(subscription_summary(sub), changed=False)
    if "RESELLER_INITIATED" not in reasons:
        hint = "Only a suspension made by the reseller can be lifted with activate."
        if "PENDING_TOS_ACCEPTANCE" in reasons:
            hint = "The customer's admin must sign in and accept Google's Terms of Service."
        raise refuse(
            f"The subscription is suspended by Google ({', '.join(sorted(reasons)) or 'OTHER'}).",
            hint,
            reason="notResellerSuspended",
        )
    done = ctx.gateway.call(
        "reseller.subscriptions.activate",
        lambda svc: svc.subscriptions().activate(
            customerId=cid, subscriptionId=sub["subscriptionId"]
        ),
    )
    return dict(subscription_summary(done), changed=True)


def _start_paid_service(ctx: StepContext) -> dict[str, Any]:
    p: SubscriptionRef = ctx.params
    cid = customer_id(ctx, p.customer)
    sub = require_subscription(ctx, cid, p.customer, p.sku_id)
    if not (sub.get("trialSettings") or {}).get("isInTrial"):
        ctx.log("The subscription is already on paid service; nothing to change.")
        return dict(subscription_summary(sub), changed=False)
    require_active(sub, "start paid service")
    if plan_of(sub) == "TRIAL":
        raise refuse(
            "A TRIAL subscription needs a paid plan before paid service can start.",
            "Choose the paid plan first with subscription.change_plan (the trial goes on "
            "until it ends or paid service starts), then start paid service.",
            reason="trialPlan",
        )
    done = ctx.gateway.call(
        "reseller.subscriptions.startPaidService",
        lambda svc: svc.subscriptions().startPaidService(
            customerId=cid, subscriptionId=sub["subscriptionId"]
        ),
    )
    return dict(subscription_summary(done), changed=True)


class SubscriptionCancel(SubscriptionRef):
    deletion_type: Literal["cancel", "transfer_to_direct"] | None = Field(
        default=None,
        description="cancel: end it now (not for Google Workspace SKUs); transfer_to_direct: "
        "hand the customer to Google. Default: transfer_to_direct for Workspace, else cancel",
    )

    @model_validator(mode="after")
    def _default_deletion(self) -> SubscriptionCancel:
        if self.deletion_type is None:
            workspace = product_of(self.sku_id) == WORKSPACE
            self.deletion_type = "transfer_to_direct" if workspace else "cancel"
        return self

    @staticmethod
    def cross_checks(data: dict[str, Any], at: str = "") -> list[rules.Problem]:
        return rules.workspace_cancel(data, at)


def _cancel(ctx: StepContext) -> dict[str, Any]:
    p: SubscriptionCancel = ctx.params
    cid = customer_id(ctx, p.customer)
    sub = find_subscription(ctx, cid, p.sku_id)
    if sub is None:
        ctx.log(f"{p.customer} has no {sku_name(p.sku_id)} subscription; nothing to cancel.")
        return {"skuId": p.sku_id, "cancelled": False}
    ctx.gateway.call(
        "reseller.subscriptions.delete",
        lambda svc: svc.subscriptions().delete(
            customerId=cid, subscriptionId=sub["subscriptionId"], deletionType=p.deletion_type
        ),
    )
    return {"skuId": p.sku_id, "subscriptionId": sub["subscriptionId"], "cancelled": True}


def _simple(name: str, summary: str, model: type[Params], step: Any) -> Operation:
    return Operation(
        name=name,
        summary=summary,
        params_model=model,
        steps=(("subscription", step),),
        result=lambda cp: cp["subscription"],
    )


SUBSCRIPTION_SUSPEND = _simple(
    "subscription.suspend",
    "Suspend a subscription (the reseller's suspension).",
    SubscriptionRef,
    _suspend,
)
SUBSCRIPTION_ACTIVATE = _simple(
    "subscription.activate",
    "Lift the reseller's suspension of a subscription.",
    SubscriptionRef,
    _activate,
)
SUBSCRIPTION_START_PAID_SERVICE = _simple(
    "subscription.start_paid_service",
    "End a trial and start paying.",
    SubscriptionRef,
    _start_paid_service,
)
SUBSCRIPTION_CANCEL = _simple(
    "subscription.cancel",
    "Cancel a subscription (or transfer it to Google direct).",
    SubscriptionCancel,
    _cancel,
)


SUBSCRIPTION_LIFECYCLE_OPERATIONS = (
    SUBSCRIPTION_SUSPEND,
    SUBSCRIPTION_ACTIVATE,
    SUBSCRIPTION_START_PAID_SERVICE,
    SUBSCRIPTION_CANCEL,
)
