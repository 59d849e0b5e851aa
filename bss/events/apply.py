"""Applying what Google holds for one subscription: the mirror, the desired state, drift, and
billing's webhooks. Event processing and reconciliation both come through here, so that a
change is told once however it was found (a duplicate or a late event changes nothing)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from bss.events.desired import (
    catch_up,
    differences,
    follow_renewal,
    renewed,
    summary,
)
from bss.events.drift_rows import clear_drift, drift_dict, open_drift, open_drift_rows
from bss.models import (
    CustomerMirror,
    DesiredSubscription,
    Drift,
    GoogleEvent,
    Instance,
    Job,
    JobState,
    saved_id,
    utcnow,
)
from bss.notify import record_event
from bss.settings import Settings

UNFINISHED = (
    JobState.QUEUED,
    JobState.WAITING,
    JobState.WAITING_QUOTA,
    JobState.RUNNING,
    JobState.RETRYING,
)
# cancellationReason of a subscription whose customer left us (another reseller, or direct)
TRANSFERRED_REASONS = ("RELATIONSHIP_ENDED", "TRANSFERRED_TO_DIRECT", "TRANSFERRED_AWAY")


@dataclass
class Applied:
    """What applying found, for callers that report it: webhook deliveries to send after
    commit, and the changes to the mirror ({customer_id, sku_id, before, after})."""

    deliveries: list[str] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)


def customer_state(customer: dict[str, Any] | None) -> str | None:
    """active, transferred_away or deleted from Google's customers.get answer; None: not read.

    Google answers a customer another reseller (or Google itself) manages with only its
    customerId, customerDomain and customerType; callers mark what Google refused to show with
    `{"customerId": ..., "_gone": "transferred_away" | "deleted"}` (or `"transferred": True`)."""
    if customer is None:
        return None
    if customer.get("_gone"):
        return str(customer["_gone"])
    if customer.get("transferred"):  # Google answered 403: another reseller's now
        return "transferred_away"
    if not ({"alternateEmail", "postalAddress", "phoneNumber"} & set(customer)):
        return "transferred_away"
    return "active"


def _suspended(view: dict[str, Any] | None) -> bool:
    """Suspended, other than a new customer's wait for its admin to accept Google's terms."""
    reasons = set((view or {}).get("suspension_reasons") or [])
    return bool(view and view["status"] == "SUSPENDED" and reasons != {"PENDING_TOS_ACCEPTANCE"})


def busy_job(session: Session, instance_id: int, keys: set[str]) -> Job | None:
    """An unfinished job of the instance on this customer: what it changes is not drift."""
    return session.exec(
        select(Job)
        .where(
            Job.instance_id == instance_id,
            col(Job.customer_domain).in_(keys),
            col(Job.state).in_(UNFINISHED),
        )
        .limit(1)
    ).first()


def _mirror(
    session: Session, instance: Instance, customer_id: str, domain: str | None
) -> CustomerMirror:
    mirror = session.exec(
        select(CustomerMirror).where(
            CustomerMirror.instance_id == saved_id(instance),
            CustomerMirror.customer_id == customer_id,
        )
    ).first()
    if mirror is None:
        mirror = CustomerMirror(
            instance_id=saved_id(instance), customer_id=customer_id, domain=domain or ""
        )
    return mirror


def apply_subscription(
    session: Session,
    settings: Settings,
    instance: Instance,
    *,
    customer_id: str,
    sku_id: str,
    google_sub: dict[str, Any] | None,
    customer: dict[str, Any] | None,
    detected_by: str,
    event: GoogleEvent | None,
    applied: Applied | None = None,
) -> list[Drift]:
    """Bring our view of (customer, SKU) to what Google holds now; the drift rows opened,
    changed or cleared (open or resolved as `cleared`).

    `google_sub` is Google's subscription as read now (None: Google no longer has it for us);
    `customer` Google's customers.get answer (None when not read; see customer_state). Records
    webhooks only for what changed since the mirror; never calls Google.
    """
    applied = applied if applied is not None else Applied()
    domain = (
        (google_sub or {}).get("customerDomain")
        or (customer or {}).get("customerDomain")
        or (event.customer_domain if event else None)
    )
    mirror = _mirror(session, instance, customer_id, domain)
    # A reconciliation meeting a customer for the first time (the first sweep of an instance
    # with many customers) mirrors it quietly: billing hears of changes, not of our first look.
    first_look = mirror.id is None and detected_by == "reconcile"
    domain = domain or mirror.domain or None
    mirror.domain = domain or mirror.domain
    before_sub = next((s for s in mirror.subscriptions if s.get("skuId") == sku_id), None)
    before, after = summary(before_sub), summary(google_sub)

    gone_as = customer_state(customer)
    if gone_as is None and google_sub is None and event is not None:
        reason = (event.payload or {}).get("cancellationReason")
        gone_as = "transferred_away" if reason in TRANSFERRED_REASONS else None
    old_status = mirror.status
    if gone_as is not None:
        mirror.status = gone_as
    elif google_sub is not None:
        mirror.status = "active"

    rest = [s for s in mirror.subscriptions if s.get("skuId") != sku_id]
    mirror.subscriptions = [*rest, google_sub] if google_sub is not None else rest
    if customer is not None and not customer.get("_gone") and gone_as == "active":
        mirror.customer = customer
    now = utcnow()
    mirror.confirmed_at = now
    session.add(mirror)

    about = {
        "instance": instance.name,
        "customer_id": customer_id,
        "customer_domain": domain,
        "sku_id": sku_id,
        "subscription_id": (google_sub or before_sub or {}).get("subscriptionId"),
    }
    told = {
        "detected_by": detected_by,
        "event_type": event.event_type if event else None,
        "event_time": event.event_time.isoformat() if event and event.event_time else None,
    }

    def tell(name: str, data: dict[str, Any]) -> None:
        delivery = record_event(
            session,
            distributor_id=instance.distributor_id,
            event=name,
            data={**about, **data, **told},
            instance_id=instance.id,
        )
        if delivery is not None:
            applied.deliveries.append(delivery.id)

    if before != after and not first_look:
        applied.changes.append({**about, "before": before, "after": after})
        tell("subscription.changed", {"before": before, "after": after})
        if renewed(before_sub, google_sub):
            tell("subscription.renewed", {"before": before, "after": after})
        if after is not None and _suspended(after) and not _suspended(before):
            tell("subscription.suspended", {"reasons": after["suspension_reasons"], "after": after})
    if mirror.status == "transferred_away" and old_status != "transferred_away":
        tell("customer.transferred_away", {"before": before})

    keys = {customer_id.lower(), *([domain.lower()] if domain else [])}
    desired = catch_up(
        session,
        instance_id=saved_id(instance),
        customer_id=customer_id,
        customer_domain=domain,
        sku_id=sku_id,
    )
    if desired is None:
        return []
    follow_renewal(desired, google_sub, renewed=renewed(before_sub, google_sub))
    session.add(desired)
    wanted = _wanted(desired, google_sub, mirror.status)
    touched = _settle_drift(
        session,
        instance,
        desired,
        wanted,
        domain=domain,
        subscription_id=about["subscription_id"],
        detected_by=detected_by,
        event=event,
        busy=busy_job(session, saved_id(instance), keys) is not None,
    )
    for drift, news in touched:
        if news:
            tell("subscription.drifted", {"drift": drift_dict(drift)})
    return [d for d, _ in touched]


def _wanted(
    desired: DesiredSubscription, google_sub: dict[str, Any] | None, status: str
) -> dict[str, tuple[Any, Any]]:
    """{field: (desired, actual)} of every difference now."""
    if google_sub is not None:
        return differences(desired, google_sub)
    if desired.status == "CANCELLED":
        return {}
    if status == "transferred_away":
        return {"customer": ("active", "transferred_away")}
    return {"exists": (True, False)}


def _settle_drift(
    session: Session,
    instance: Instance,
    desired: DesiredSubscription,
    wanted: dict[str, tuple[Any, Any]],
    *,
    domain: str | None,
    subscription_id: str | None,
    detected_by: str,
    event: GoogleEvent | None,
    busy: bool,
) -> list[tuple[Drift, bool]]:
    """Open, update or clear the drift rows of (instance, customer, SKU); each touched row with
    whether billing is to hear of it (opened, or Google's value moved)."""
    touched: list[tuple[Drift, bool]] = []
    rows = open_drift_rows(
        session,
        instance_id=saved_id(instance),
        customer_id=desired.customer_id,
        sku_id=desired.sku_id,
    )
    for name, row in rows.items():
        if name not in wanted:
            clear_drift(session, row, by="google")
            touched.append((row, False))
    for name, (want, have) in wanted.items():
        current = rows.get(name)
        if current is not None and current.actual == have and current.desired == want:
            continue
        if current is None and busy:
            continue  # a job of ours is changing this customer: compare after it
        row, news = open_drift(
            session,
            current,
            instance=instance,
            desired=desired,
            field=name,
            want=want,
            have=have,
            domain=domain,
            subscription_id=subscription_id,
            detected_by=detected_by,
            event_id=event.id if event else None,
        )
        touched.append((row, news))
    return touched
