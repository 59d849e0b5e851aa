"""Finding drift (billing's API, the dashboard) and resolving it: accept Google's value as what
billing wants, or restore ours with a job. Nothing here calls Google."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from bss.errors import InvalidState, NotFound, ValidationFailed
from bss.jobs import submit_job
from bss.models import (
    CustomerMirror,
    DesiredSubscription,
    Distributor,
    Drift,
    DriftState,
    Instance,
    utcnow,
)
from bss.settings import Settings

DRIFT_FIELDS = ("seats", "plan", "renewal", "status", "customer", "exists")
STATES = ("open", "resolved", "all")
ACTIONS = ("accept", "restore")
MAX_LIMIT = 200


def _cursor_of(drift: Drift) -> str:
    return f"{drift.detected_at.isoformat()}|{drift.id}"


def _parse_cursor(cursor: str) -> tuple[datetime, str]:
    at, _, drift_id = cursor.partition("|")
    try:
        return datetime.fromisoformat(at), drift_id
    except ValueError:
        raise ValidationFailed(
            "The cursor is not one this API gave.",
            details=[{"field": "cursor", "problem": "use next_cursor from the previous page"}],
        ) from None


def list_drift(
    session: Session,
    *,
    distributor_id: int | None,
    state: str | None = "open",
    instance_id: int | None = None,
    customer: str | None = None,
    field: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Drift], str | None]:
    """Drift rows, newest first, of one distributor (None: all, for operators); the page and
    the cursor of the next one (None at the end). `customer` is a domain or a Google id."""
    state = state or "open"
    problems = []
    if state not in STATES:
        problems.append({"field": "state", "problem": f"must be one of {', '.join(STATES)}"})
    if field is not None and field not in DRIFT_FIELDS:
        problems.append({"field": "field", "problem": f"must be one of {', '.join(DRIFT_FIELDS)}"})
    if not 1 <= limit <= MAX_LIMIT:
        problems.append({"field": "limit", "problem": f"must be between 1 and {MAX_LIMIT}"})
    if problems:
        raise ValidationFailed("The drift filter is invalid.", details=problems)
    query = select(Drift)
    if distributor_id is not None:
        query = query.where(Drift.distributor_id == distributor_id)
    if state != "all":
        query = query.where(Drift.state == state)
    if instance_id is not None:
        query = query.where(Drift.instance_id == instance_id)
    if customer:
        key = customer.strip().lower()
        query = query.where(
            or_(col(Drift.customer_domain) == key, col(Drift.customer_id) == customer.strip())
        )
    if field:
        query = query.where(Drift.field == field)
    if cursor:
        at, last_id = _parse_cursor(cursor)
        query = query.where(
            or_(
                col(Drift.detected_at) < at,
                and_(col(Drift.detected_at) == at, col(Drift.id) < last_id),
            )
        )
    rows = list(
        session.exec(
            query.order_by(col(Drift.detected_at).desc(), col(Drift.id).desc()).limit(limit + 1)
        ).all()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (_cursor_of(rows[-1]) if more and rows else None)


def get_drift(session: Session, drift_id: str, *, distributor_id: int | None) -> Drift:
    """One drift row, or NotFound (also for another distributor's)."""
    drift = session.get(Drift, drift_id)
    if drift is None or (distributor_id is not None and drift.distributor_id != distributor_id):
        raise NotFound(f"No drift {drift_id!r}.")
    return drift


def _desired(session: Session, drift: Drift) -> DesiredSubscription:
    found = session.exec(
        select(DesiredSubscription).where(
            DesiredSubscription.instance_id == drift.instance_id,
            DesiredSubscription.customer_id == drift.customer_id,
            DesiredSubscription.sku_id == (drift.sku_id or ""),
        )
    ).first()
    return found or DesiredSubscription(
        instance_id=drift.instance_id, customer_id=drift.customer_id, sku_id=drift.sku_id or ""
    )


def _accept(session: Session, drift: Drift) -> None:
    desired = _desired(session, drift)
    if drift.field in ("exists", "customer"):
        desired.status = "CANCELLED"  # gone from us at Google: billing no longer wants it
    else:
        setattr(desired, drift.field, drift.actual)
    desired.set_by_job_id, desired.set_at = None, utcnow()
    session.add(desired)


def _google_sub(session: Session, drift: Drift) -> dict[str, Any]:
    mirror = session.exec(
        select(CustomerMirror).where(
            CustomerMirror.instance_id == drift.instance_id,
            CustomerMirror.customer_id == drift.customer_id,
        )
    ).first()
    subs = mirror.subscriptions if mirror else []
    return next((s for s in subs if s.get("skuId") == drift.sku_id), {})


def cannot_restore(drift: Drift, why: str, hint: str) -> InvalidState:
    return InvalidState(f"Drift {drift.id} ({drift.field}) cannot be restored: {why}", hint=hint)


def restore_request(session: Session, drift: Drift) -> tuple[str, dict[str, Any]]:
    """The operation and params of the job that puts billing's value back at Google, or
    InvalidState saying why none can."""
    ref = {"customer": drift.customer_domain or drift.customer_id, "sku_id": drift.sku_id}
    desired = _desired(session, drift)
    accept = "Accept Google's value instead (action accept)."
    if drift.field == "seats":
        return "subscription.change_seats", {**ref, "seats": drift.desired}
    if drift.field == "renewal":
        return "subscription.change_renewal", {**ref, "renewal_type": drift.desired}
    if drift.field == "plan":
        if drift.desired == "TRIAL":
            raise cannot_restore(drift, "a subscription cannot go back to a trial.", accept)
        params = {**ref, "plan": drift.desired}
        if desired.seats is not None:
            params["seats"] = desired.seats
        return "subscription.change_plan", params
    if drift.field == "status":
        reasons = set(_google_sub(session, drift).get("suspensionReasons") or [])
        if drift.desired == "SUSPENDED" and drift.actual == "ACTIVE":
            return "subscription.suspend", ref
        if drift.desired == "ACTIVE" and drift.actual == "SUSPENDED":
            if reasons and reasons <= {"RESELLER_INITIATED"}:
                return "subscription.activate", ref
            raise cannot_restore(
                drift,
                f"Google suspended it ({', '.join(sorted(reasons)) or 'OTHER'}); only the "
                "reseller's own suspension can be lifted.",
                "Settle it with Google (Partner Sales Console), or accept Google's value.",
            )
        if drift.actual == "CANCELLED":
            raise cannot_restore(
                drift,
                "it ended at Google at its renewal.",
                "Buy it again with subscription.create, then accept Google's value here.",
            )
        raise cannot_restore(
            drift,
            "ending a subscription is not done by restoring.",
            "Submit subscription.cancel if billing still wants it ended, or accept.",
        )
    if drift.field == "customer":
        raise cannot_restore(
            drift,
            "the customer transferred away from this reseller.",
            "A transfer back needs the customer's transfer token (customer.transfer); " + accept,
        )
    raise cannot_restore(
        drift,
        "the subscription no longer exists at Google.",
        "Buy it again with subscription.create, or accept Google's value.",
    )


def resolve_drift(
    session: Session,
    settings: Settings,
    drift_id: str,
    *,
    distributor_id: int | None,
    action: str,
    actor: str,
) -> tuple[Drift, str | None]:
    """Resolve an open drift: `accept` makes Google's value what billing wants; `restore`
    submits the job that puts billing's value back (its id is returned: dispatch it after
    commit with bss.jobs.dispatch). Refuses, changing nothing, what cannot be done."""
    if action not in ACTIONS:
        raise ValidationFailed(
            f"Unknown action {action!r}.",
            details=[{"field": "action", "problem": "must be accept or restore"}],
        )
    drift = get_drift(session, drift_id, distributor_id=distributor_id)
    if drift.state != DriftState.OPEN:
        raise InvalidState(
            f"Drift {drift.id} is resolved already ({drift.resolution}).",
            hint="List open drift with GET /api/v1/drift.",
        )
    job_id = None
    if action == "accept":
        _accept(session, drift)
        drift.resolution = "accepted"
    else:
        operation, params = restore_request(session, drift)
        instance = session.get(Instance, drift.instance_id)
        distributor = session.get(Distributor, drift.distributor_id)
        if instance is None or distributor is None:
            raise NotFound(f"The instance of drift {drift.id} no longer exists.")
        job, _created = submit_job(
            session,
            distributor=distributor,
            instance_name=instance.name,
            operation=operation,
            params=params,
            idempotency_key=f"drift-restore-{drift.id}",
            external_ref=drift.id,
        )
        job_id = job.id
        drift.resolution, drift.resolution_job_id = "restored", job.id
    now = utcnow()
    drift.state, drift.resolved_by = DriftState.RESOLVED, actor[:300]
    drift.resolved_at = drift.updated_at = now
    session.add(drift)
    return drift, job_id
