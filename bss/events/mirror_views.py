"""A customer and its subscriptions as Google holds them, from the mirror, for billing's API:
with when Google last confirmed it, and whether the customer is still ours."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from bss.errors import NotFound
from bss.events.desired import summary
from bss.models import CustomerMirror, Drift, DriftState, Instance, iso


def find_mirror(
    session: Session, *, distributor_id: int | None, key: str
) -> tuple[CustomerMirror, Instance]:
    """The mirror of customer `key` (its primary domain or Google id) among the distributor's
    instances (None: any), the most recently confirmed; NotFound otherwise."""
    wanted = (key or "").strip()
    query = (
        select(CustomerMirror, Instance)
        .join(Instance, col(Instance.id) == col(CustomerMirror.instance_id))
        .where(
            or_(
                func.lower(col(CustomerMirror.domain)) == wanted.lower(),
                col(CustomerMirror.customer_id) == wanted,
            )
        )
    )
    if distributor_id is not None:
        query = query.where(Instance.distributor_id == distributor_id)
    rows = session.exec(query).all()
    if not wanted or not rows:
        raise NotFound(
            f"No customer {wanted!r} known to this platform.",
            hint="Customers appear once a job, a notification or a reconciliation has read them "
            "from Google.",
        )
    mirror, instance = max(rows, key=lambda r: (r[0].confirmed_at or r[0].synced_at, r[0].id or 0))
    return mirror, instance


def _customer(mirror: CustomerMirror, instance: Instance) -> dict[str, Any]:
    google = mirror.customer or {}
    return {
        "customer_id": mirror.customer_id,
        "customer_domain": mirror.domain,
        "instance": instance.name,
        "status": mirror.status,
        "confirmed_at": iso(mirror.confirmed_at or mirror.synced_at),
        "last_event_time": iso(mirror.last_event_time),
        "alternate_email": google.get("alternateEmail"),
        "customer_type": google.get("customerType"),
        "organization_name": (google.get("postalAddress") or {}).get("organizationName"),
        "subscriptions": len(mirror.subscriptions),
    }


def customer_view(session: Session, *, distributor_id: int | None, key: str) -> dict[str, Any]:
    """The customer as Google has it (from the mirror), with `confirmed_at` and `status`."""
    mirror, instance = find_mirror(session, distributor_id=distributor_id, key=key)
    view = _customer(mirror, instance)
    view["open_drift"] = _open_drift(session, mirror, None)
    return view


def _open_drift(session: Session, mirror: CustomerMirror, sku_id: str | None) -> int:
    query = (
        select(func.count())
        .select_from(Drift)
        .where(
            Drift.instance_id == mirror.instance_id,
            Drift.customer_id == mirror.customer_id,
            Drift.state == DriftState.OPEN,
        )
    )
    if sku_id is not None:
        query = query.where(Drift.sku_id == sku_id)
    return int(session.exec(query).one())


def subscriptions_view(session: Session, *, distributor_id: int | None, key: str) -> dict[str, Any]:
    """The customer's subscriptions as Google has them (from the mirror), each with its
    number of open differences from what billing ordered."""
    mirror, instance = find_mirror(session, distributor_id=distributor_id, key=key)
    subscriptions = []
    for sub in mirror.subscriptions:
        item = summary(sub) or {}
        item["open_drift"] = _open_drift(session, mirror, str(sub.get("skuId")))
        subscriptions.append(item)
    return {
        "customer_id": mirror.customer_id,
        "customer_domain": mirror.domain,
        "instance": instance.name,
        "status": mirror.status,
        "confirmed_at": iso(mirror.confirmed_at or mirror.synced_at),
        "subscriptions": subscriptions,
    }
