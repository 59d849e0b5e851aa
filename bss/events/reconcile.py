"""Reconciliation: what Google holds for an instance's customers, compared with our mirror and
the desired state, finding what notifications missed (a lost push, a time without them).

Cheap on purpose: `subscriptions.list` without a customerId pages through every subscription of
the reseller, 100 at a time (1,000 customers of one subscription each: 10 calls), paced by the
instance's Cloud project quota. A customer is read on its own only when a subscription we mirror
is no longer listed (deleted, or the customer left us). Each subscription then goes through
`apply_subscription`, as an event's does: the mirror, drift, and billing's webhooks. Nothing
at Google is changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from bss.db import session_scope
from bss.errors import BssError, GoogleAuthorizationError, GoogleError, NotFound
from bss.events.apply import Applied, apply_subscription, customer_state
from bss.events.calls import CallCounter, call_waiting_for_quota
from bss.events.process import redis_locks
from bss.gateway import instance_gateway
from bss.instances import mark_needs_reauth
from bss.models import (
    CustomerMirror,
    Distributor,
    Drift,
    DriftState,
    Instance,
    iso,
    utcnow,
)
from bss.settings import Settings

PAGE_SIZE = 100  # the most subscriptions.list gives in one page
#: Customers applied in one transaction: short transactions leave room for the workers.
CHUNK = 100
# (what `bss reconcile` calls a field, the key in apply's before/after summaries)
FIELDS = (("status", "status"), ("plan", "plan"), ("seats", "seats"), ("renewal", "renewal_type"))
Send = Callable[[str], None]


@dataclass(frozen=True)
class Change:
    """A difference between our mirror and Google that no notification had told us."""

    customer_id: str
    customer_domain: str | None
    sku_id: str | None
    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class DriftLine:
    """An open difference between the desired state and Google, after the reconciliation."""

    id: str
    customer_domain: str | None
    customer_id: str
    sku_id: str | None
    field: str
    desired: Any
    actual: Any
    desired_job_id: str | None


@dataclass
class ReconcileReport:
    """What one reconciliation of an instance did and found."""

    instance: str
    started_at: datetime
    calls: int = 0
    calls_by_method: dict[str, int] = field(default_factory=dict)
    customers: int = 0
    subscriptions: int = 0
    missed: list[Change] = field(default_factory=list)
    opened: int = 0
    cleared: int = 0
    drift: list[DriftLine] = field(default_factory=list)
    duration_s: float = 0.0
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        """The instance's `last_reconcile`: counts, and the first differences found."""
        return {
            "at": iso(self.started_at),
            "calls": self.calls,
            "customers": self.customers,
            "subscriptions": self.subscriptions,
            "missed": len(self.missed),
            "drift": len(self.drift),
            "opened": self.opened,
            "cleared": self.cleared,
            "duration_ms": int(self.duration_s * 1000),
            "error": self.error,
            "changes": [asdict(c) for c in self.missed[:20]],
        }


def _list_all(gateway: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"maxResults": PAGE_SIZE}
        if token:
            kwargs["pageToken"] = token

        def page_of(svc: Any, kw: dict[str, Any] = kwargs) -> Any:
            return svc.subscriptions().list(**kw)

        page = call_waiting_for_quota(gateway, "reseller.subscriptions.list", page_of)
        found += list((page or {}).get("subscriptions") or [])
        token = (page or {}).get("nextPageToken")
        if not token:
            return found


def _read_customer(gateway: Any, customer_id: str) -> dict[str, Any] | None:
    """Google's customer, None when Google no longer has it (404); a customer another reseller
    (or Google) now manages answers 403: `{"customerId", "transferred": True}`."""
    try:
        found = call_waiting_for_quota(
            gateway,
            "reseller.customers.get",
            lambda svc: svc.customers().get(customerId=customer_id),
        )
    except GoogleError as exc:
        if exc.status == 404:
            return None
        if exc.status == 403 and not isinstance(exc, GoogleAuthorizationError):
            return {"customerId": customer_id, "transferred": True}
        raise
    return dict(found or {})


def _changes(applied: Applied, known: set[str], gone_as: dict[str, str]) -> list[Change]:
    """What applying changed in the mirror of customers we already mirrored: what no
    notification had told us (a customer seen for the first time is simply new to us)."""
    found: list[Change] = []
    for c in applied.changes:
        cid, sku, domain = c["customer_id"], c.get("sku_id"), c.get("customer_domain")
        if cid not in known:
            continue
        before, after = c.get("before") or {}, c.get("after") or {}
        if not before or not after:
            found.append(
                Change(cid, domain, sku, "exists", bool(before), gone_as.get(cid, bool(after)))
            )
            continue
        found += [
            Change(cid, domain, sku, name, before.get(key), after.get(key))
            for name, key in FIELDS
            if before.get(key) != after.get(key)
        ]
    return found


def _open_drift(session: Session, instance_id: int) -> set[str]:
    return set(
        session.exec(
            select(Drift.id).where(Drift.instance_id == instance_id, Drift.state == DriftState.OPEN)
        ).all()
    )


def reconcile(
    settings: Settings,
    instance_id: int,
    *,
    send_webhook: Send | None = None,
) -> ReconcileReport:
    """Compare what Google holds for the instance's customers with our mirror and the desired
    state; update the mirror, open or clear drift and tell billing, as events would have.

    Recorded on the instance (`last_reconciled_at`, `last_reconcile`). A Google failure is
    recorded there too and raised, with nothing applied.
    """
    started, clock = utcnow(), time.monotonic()
    counter = CallCounter()
    with session_scope(settings.database_url) as s:
        instance = s.get(Instance, instance_id)
        if instance is None:
            raise NotFound(f"No instance {instance_id}.")
        distributor = s.get(Distributor, instance.distributor_id)
        report = ReconcileReport(
            f"{distributor.slug if distributor else instance.distributor_id}/{instance.name}",
            started,
        )
        gateway = instance_gateway(settings, instance, record=counter)
        mirrors = {
            m.customer_id: (m.status, [str(x.get("skuId")) for x in m.subscriptions])
            for m in s.exec(
                select(CustomerMirror).where(CustomerMirror.instance_id == instance_id)
            ).all()
        }
        drift_before = _open_drift(s, instance_id)
    try:
        listed = _list_all(gateway)
        by_customer: dict[str, dict[str, dict[str, Any]]] = {}
        for sub in listed:
            if sub.get("customerId") and sub.get("skuId"):
                by_customer.setdefault(sub["customerId"], {})[str(sub["skuId"])] = sub
        # Subscriptions we mirror that Google no longer lists: read those customers only.
        gone: dict[str, list[str]] = {}
        for cid, (status, skus) in mirrors.items():
            missing = [k for k in skus if k not in by_customer.get(cid, {})]
            if status == "active" and missing:
                gone[cid] = missing
        customers = {cid: _read_customer(gateway, cid) for cid in gone}
    except BssError as exc:
        _record_failure(settings, instance_id, report, exc, counter, clock)
        raise
    report.subscriptions = len(listed)
    report.customers = len(set(by_customer) | set(gone))
    work: dict[str, list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]] = {}
    for cid, subs in by_customer.items():
        work[cid] = [(sku, sub, None) for sku, sub in subs.items()]
    gone_as: dict[str, str] = {}
    for cid, skus in gone.items():
        customer = customers[cid]
        gone_as[cid] = customer_state(customer) or "active"
        if gone_as[cid] == "active":
            gone_as[cid] = "cancelled"  # still our customer; this subscription is not
        work.setdefault(cid, []).extend((sku, None, customer) for sku in skus)
    applied = Applied()
    ids = sorted(work)
    for start in range(0, len(ids), CHUNK):
        chunk = {cid: work[cid] for cid in ids[start : start + CHUNK]}
        _apply_chunk(settings, instance_id, chunk, started, applied, send_webhook)
    report.missed = _changes(applied, set(mirrors), gone_as)
    _finish(settings, instance_id, report, drift_before, counter, clock)
    return report


def _apply_chunk(
    settings: Settings,
    instance_id: int,
    chunk: dict[str, list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]],
    listed_at: datetime,
    applied: Applied,
    send_webhook: Send | None,
) -> None:
    """Apply a chunk of customers in one transaction, each under the lock event processing
    takes for it; a customer an event confirmed after Google was listed is left as it is (the
    event's view is newer than ours)."""
    sent = len(applied.deliveries)
    locks = redis_locks(settings)
    with ExitStack() as held:
        for cid in sorted(chunk):  # one order everywhere: no two holders wait on each other
            held.enter_context(locks(f"{instance_id}:{cid}"))
        with session_scope(settings.database_url) as s:
            instance = s.get(Instance, instance_id)
            assert instance is not None
            newer = set(
                s.exec(
                    select(CustomerMirror.customer_id).where(
                        CustomerMirror.instance_id == instance_id,
                        col(CustomerMirror.customer_id).in_(list(chunk)),
                        col(CustomerMirror.confirmed_at) > listed_at,
                    )
                ).all()
            )
            for cid, items in chunk.items():
                if cid in newer:
                    continue
                for sku, sub, customer in items:
                    apply_subscription(
                        s,
                        settings,
                        instance,
                        customer_id=cid,
                        sku_id=sku,
                        google_sub=sub,
                        customer=customer,
                        detected_by="reconcile",
                        event=None,
                        applied=applied,
                    )
    for delivery_id in applied.deliveries[sent:]:  # committed: billing may hear of it now
        if send_webhook is not None:
            send_webhook(delivery_id)


def _finish(
    settings: Settings,
    instance_id: int,
    report: ReconcileReport,
    drift_before: set[str],
    counter: CallCounter,
    clock: float,
) -> None:
    report.calls, report.calls_by_method = counter.total, counter.by_method()
    with session_scope(settings.database_url) as s:
        open_now = s.exec(
            select(Drift)
            .where(Drift.instance_id == instance_id, Drift.state == DriftState.OPEN)
            .order_by(col(Drift.customer_domain), col(Drift.sku_id), col(Drift.field))
        ).all()
        ids = {d.id for d in open_now}
        report.opened = len(ids - drift_before)
        report.cleared = len(drift_before - ids)
        report.drift = [
            DriftLine(
                d.id,
                d.customer_domain,
                d.customer_id,
                d.sku_id,
                d.field,
                d.desired,
                d.actual,
                d.desired_job_id,
            )
            for d in open_now
        ]
        report.duration_s = time.monotonic() - clock
        instance = s.get(Instance, instance_id)
        if instance is not None:
            instance.last_reconciled_at = report.started_at
            instance.last_reconcile = report.summary()
            s.add(instance)


def _record_failure(
    settings: Settings,
    instance_id: int,
    report: ReconcileReport,
    exc: BssError,
    counter: CallCounter,
    clock: float,
) -> None:
    report.calls, report.calls_by_method = counter.total, counter.by_method()
    report.duration_s = time.monotonic() - clock
    what = f"{exc.reason}: {exc.message}" if isinstance(exc, GoogleError) and exc.reason else None
    report.error = f"Reading Google failed ({what or exc.message})"[:500]
    with session_scope(settings.database_url) as s:
        instance = s.get(Instance, instance_id)
        if instance is None:
            return
        if isinstance(exc, GoogleAuthorizationError) and exc.reason in (
            "invalid_grant",
            "unauthorized_client",
            "invalid_client",
        ):
            mark_needs_reauth(s, instance_id, exc)  # billing hears of it as from a job
        instance.last_reconciled_at = report.started_at
        instance.last_reconcile = report.summary()
        s.add(instance)
