"""The desired state of a subscription (what billing's last succeeded job set), caught up from
the jobs that finished since, and compared with Google's subscription field by field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from bss.models import DesiredSubscription, Job, JobState
from bss.operations import ANNUAL_PLANS, seats_of
from bss.operations import plan_of as google_plan

# The jobs that set a subscription's desired state, and the status each one asks for (None:
# the status stays as it was).
DESIRING_OPERATIONS: dict[str, str | None] = {
    "order.create": "ACTIVE",
    "subscription.create": "ACTIVE",
    "subscription.change_seats": None,
    "subscription.change_plan": None,
    "subscription.change_renewal": None,
    "subscription.suspend": "SUSPENDED",
    "subscription.activate": "ACTIVE",
    "subscription.start_paid_service": None,
    "subscription.cancel": "CANCELLED",
}
# The fields a drift is about, in the order they are compared.
FIELDS = ("status", "plan", "seats", "renewal")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def plan_of(sub: dict[str, Any]) -> str | None:
    """Google's plan name (ANNUAL read as ANNUAL_MONTHLY_PAY); None when it has none."""
    return google_plan(sub) or None


def status_of(sub: dict[str, Any]) -> str:
    """ACTIVE, SUSPENDED or CANCELLED (ended at renewal with type CANCEL). A new customer's
    subscription waiting for its admin to accept the Terms of Service counts as ACTIVE: it
    becomes so by itself."""
    status = str(sub.get("status") or "ACTIVE")
    reasons = set(sub.get("suspensionReasons") or [])
    if status == "SUSPENDED" and "RENEWAL_WITH_TYPE_CANCEL" in reasons:
        return "CANCELLED"
    if status == "SUSPENDED" and reasons == {"PENDING_TOS_ACCEPTANCE"}:
        return "ACTIVE"
    return status


def summary(sub: dict[str, Any] | None) -> dict[str, Any] | None:
    """A subscription as billing is told of it (before/after), in the API's snake_case."""
    if sub is None:
        return None
    return {
        "subscription_id": sub.get("subscriptionId"),
        "sku_id": sub.get("skuId"),
        "sku_name": sub.get("skuName"),
        "status": sub.get("status"),
        "suspension_reasons": list(sub.get("suspensionReasons") or []),
        "plan": plan_of(sub),
        "seats": seats_of(sub),
        "renewal_type": (sub.get("renewalSettings") or {}).get("renewalType"),
        "commitment_end": ((sub.get("plan") or {}).get("commitmentInterval") or {}).get("endTime"),
    }


def actual_values(sub: dict[str, Any]) -> dict[str, Any]:
    """Google's subscription in the desired state's terms."""
    annual = plan_of(sub) in ANNUAL_PLANS
    return {
        "status": status_of(sub),
        "plan": plan_of(sub),
        "seats": seats_of(sub),
        "renewal": (sub.get("renewalSettings") or {}).get("renewalType") if annual else None,
    }


def desired_values(desired: DesiredSubscription) -> dict[str, Any]:
    return {
        "status": desired.status,
        "plan": desired.plan,
        "seats": desired.seats,
        "renewal": desired.renewal,
    }


def differences(desired: DesiredSubscription, sub: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{field: (desired, actual)} for each field where Google differs from what billing wants;
    a field billing never set is not compared, nor the renewal of a plan that has none."""
    want, have = desired_values(desired), actual_values(sub)
    out: dict[str, tuple[Any, Any]] = {}
    for field in FIELDS:
        if want[field] is None:
            continue
        if field == "renewal" and have["plan"] not in ANNUAL_PLANS:
            continue
        if field in ("seats", "renewal") and have["status"] == "CANCELLED":
            continue  # an ended subscription: its status says it all
        if want[field] != have[field]:
            out[field] = (want[field], have[field])
    return out


def _result_for(job: Job, sku_id: str) -> dict[str, Any] | None:
    """The subscription summary a job's result holds for `sku_id` (snake_case or Google's)."""
    result = job.result or {}
    items = result.get("subscriptions") if job.operation == "order.create" else [result]
    for item in items or []:
        if isinstance(item, dict) and (item.get("sku_id") or item.get("skuId")) == sku_id:
            return item
    return None


def _take(desired: DesiredSubscription, job: Job, item: dict[str, Any]) -> None:
    def get(snake: str, camel: str) -> Any:
        return item.get(snake, item.get(camel))

    status = DESIRING_OPERATIONS[job.operation]
    if job.operation == "subscription.cancel":
        desired.status = "CANCELLED"
    else:
        desired.subscription_id = get("subscription_id", "subscriptionId") or (
            desired.subscription_id
        )
        if get("plan", "plan"):
            desired.plan = get("plan", "plan")
            desired.renewal = get("renewal_type", "renewalType")
        if get("seats", "seats") is not None:
            desired.seats = int(get("seats", "seats"))
        desired.status = status or desired.status or "ACTIVE"
    desired.set_by_job_id = job.id
    desired.set_at = job.finished_at or desired.set_at


def catch_up(
    session: Session,
    *,
    instance_id: int,
    customer_id: str,
    customer_domain: str | None,
    sku_id: str,
) -> DesiredSubscription | None:
    """The desired state of (instance, customer, SKU), with every succeeded job that changed
    it since it was last set applied in the order they finished; None if no job ever set it."""
    desired = session.exec(
        select(DesiredSubscription).where(
            DesiredSubscription.instance_id == instance_id,
            DesiredSubscription.customer_id == customer_id,
            DesiredSubscription.sku_id == sku_id,
        )
    ).first()
    keys = {customer_id.lower(), *([customer_domain.lower()] if customer_domain else [])}
    since = desired.set_at if desired else EPOCH
    jobs = session.exec(
        select(Job)
        .where(
            Job.instance_id == instance_id,
            Job.state == JobState.SUCCEEDED,
            col(Job.customer_domain).in_(keys),
            col(Job.operation).in_(list(DESIRING_OPERATIONS)),
            col(Job.finished_at) > since,
        )
        .order_by(col(Job.finished_at), col(Job.id))
    ).all()
    for job in jobs:
        item = _result_for(job, sku_id)
        if item is None:
            continue
        if desired is None:
            desired = DesiredSubscription(
                instance_id=instance_id, customer_id=customer_id, sku_id=sku_id
            )
        _take(desired, job, item)
    if desired is not None:
        session.add(desired)
    return desired


def follow_renewal(
    desired: DesiredSubscription, sub: dict[str, Any] | None, *, renewed: bool
) -> None:
    """What a renewal does by the renewal type billing chose is what billing wants: the plan
    it renews into, the seats it counts, or the end it asked for (CANCEL)."""
    if sub is None or desired.renewal is None:
        return
    have = actual_values(sub)
    if desired.renewal == "CANCEL" and have["status"] == "CANCELLED":
        desired.status = "CANCELLED"
        return
    if not renewed:
        return
    if desired.renewal == "SWITCH_TO_PAY_AS_YOU_GO" and have["plan"] == "FLEXIBLE":
        desired.plan, desired.seats, desired.renewal = "FLEXIBLE", have["seats"], None
    elif desired.renewal.startswith(("AUTO_RENEW", "RENEW_CURRENT_USERS")):
        desired.plan = have["plan"]
        if desired.renewal.startswith("RENEW_CURRENT_USERS"):
            desired.seats = have["seats"]


def renewed(before: dict[str, Any] | None, after: dict[str, Any] | None) -> bool:
    """Whether an annual commitment renewed between two reads (a new commitment period, or an
    annual plan that became FLEXIBLE at its end)."""
    if not before or not after:
        return False
    old, new = summary(before) or {}, summary(after) or {}
    if old["plan"] in ANNUAL_PLANS and new["commitment_end"] and old["commitment_end"]:
        return bool(int(new["commitment_end"]) > int(old["commitment_end"]))
    return bool(
        old["plan"] in ANNUAL_PLANS
        and new["plan"] == "FLEXIBLE"
        and old["renewal_type"] == "SWITCH_TO_PAY_AS_YOU_GO"
    )
