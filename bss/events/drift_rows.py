"""Drift rows: one open row per instance, customer, SKU and field; opened, moved and cleared
as Google's value changes, and shown to billing the same way everywhere."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from bss.models import DesiredSubscription, Drift, DriftState, Instance, iso, saved_id, utcnow
from bss.notify import drift_found


def drift_dict(drift: Drift) -> dict[str, Any]:
    """A drift as billing's webhooks and the API show it."""
    return {
        "id": drift.id,
        "state": drift.state,
        "customer_id": drift.customer_id,
        "customer_domain": drift.customer_domain,
        "sku_id": drift.sku_id,
        "subscription_id": drift.subscription_id,
        "field": drift.field,
        "desired": drift.desired,
        "actual": drift.actual,
        "desired_job_id": drift.desired_job_id,
        "detected_by": drift.detected_by,
        "detected_at": iso(drift.detected_at),
        "updated_at": iso(drift.updated_at),
        "resolved_at": iso(drift.resolved_at),
        "resolution": drift.resolution,
        "resolution_job_id": drift.resolution_job_id,
        "resolved_by": drift.resolved_by,
    }


def open_drift_rows(
    session: Session, *, instance_id: int, customer_id: str, sku_id: str
) -> dict[str, Drift]:
    """The open drift of (instance, customer, SKU), by field."""
    rows = session.exec(
        select(Drift).where(
            Drift.instance_id == instance_id,
            Drift.customer_id == customer_id,
            Drift.sku_id == sku_id,
            Drift.state == DriftState.OPEN,
        )
    ).all()
    return {row.field: row for row in rows}


def clear_drift(session: Session, row: Drift, *, by: str) -> None:
    """Google came back to the desired value (or the difference no longer applies)."""
    now = utcnow()
    row.state, row.resolution, row.resolved_by = DriftState.RESOLVED, "cleared", by
    row.resolved_at = row.updated_at = now
    session.add(row)


def open_drift(
    session: Session,
    row: Drift | None,
    *,
    instance: Instance,
    desired: DesiredSubscription,
    field: str,
    want: Any,
    have: Any,
    domain: str | None,
    subscription_id: str | None,
    detected_by: str,
    event_id: int | None,
) -> tuple[Drift, bool]:
    """Open a drift row (or move the open one to Google's new value); the row, and whether
    billing is to hear of it (a new difference, or Google's value changed)."""
    news = row is None or row.actual != have
    opened = row is None
    if row is None:
        row = Drift(
            distributor_id=instance.distributor_id,
            instance_id=saved_id(instance),
            customer_id=desired.customer_id,
            sku_id=desired.sku_id,
            field=field,
            detected_by=detected_by,
        )
    row.customer_domain = domain or row.customer_domain
    row.subscription_id = subscription_id or row.subscription_id
    row.desired, row.actual = want, have
    row.desired_job_id = desired.set_by_job_id
    row.event_id = event_id if news else row.event_id
    row.updated_at = utcnow()
    session.add(row)
    if opened:  # counted in the distributor's drift digest, mailed once per window
        drift_found(session, row)
    return row, news
