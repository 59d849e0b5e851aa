"""The scheduler's share of Google's notifications, beside the jobs sweep: pull for instances in
pull mode, reconcile instances whose time has come, and send again events a worker never took.

Several scheduler processes may run: an instance's reconciliation is claimed in the database
first (one process wins), a pull is Pub/Sub's to share out, and an event sent twice is
processed once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import col, select

from bss.db import session_scope
from bss.errors import BssError
from bss.events.pull import pull_once
from bss.events.reconcile import reconcile
from bss.models import EventState, GoogleEvent, Instance, InstanceStatus, utcnow
from bss.settings import Settings

log = logging.getLogger(__name__)

SendEvent = Callable[[int], None]
SendWebhook = Callable[[str], None]

#: An event still `received` this long after it arrived is sent to a worker again.
RESEND_AFTER = timedelta(seconds=60)
#: Events sent again in one tick at most.
RESEND_LIMIT = 500


@dataclass
class TickState:
    """What one scheduler process remembers between ticks (the database holds the rest)."""

    last_pull: dict[int, datetime] = field(default_factory=dict)
    last_resend: datetime | None = None


@dataclass
class TickResult:
    """What a tick did, for the log and the tests."""

    pulled: dict[int, int] = field(default_factory=dict)
    reconciled: list[int] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


def _claim_reconcile(settings: Settings, instance_id: int, now: datetime) -> bool:
    """Take this instance's due reconciliation (a conditional update: one process wins)."""
    due = now - timedelta(seconds=settings.reconcile_interval_seconds)
    with session_scope(settings.database_url) as s:
        result = s.execute(
            update(Instance)
            .where(
                col(Instance.id) == instance_id,
                or_(
                    col(Instance.last_reconciled_at).is_(None),
                    col(Instance.last_reconciled_at) < due,
                ),
            )
            .values(last_reconciled_at=now)
        )
        return bool(getattr(result, "rowcount", 0))


def _ids(rows: Any) -> list[int]:
    return [int(i) for i in rows if i is not None]


def _due_reconcile(settings: Settings, now: datetime) -> list[int]:
    if settings.reconcile_interval_seconds <= 0:
        return []
    due = now - timedelta(seconds=settings.reconcile_interval_seconds)
    with session_scope(settings.database_url) as s:
        return _ids(
            s.exec(
                select(Instance.id).where(
                    Instance.status == InstanceStatus.AUTHENTICATED,
                    or_(
                        col(Instance.last_reconciled_at).is_(None),
                        col(Instance.last_reconciled_at) < due,
                    ),
                )
            ).all()
        )


def _pull_mode(settings: Settings) -> list[int]:
    if not settings.events_service_account_file:
        return []
    with session_scope(settings.database_url) as s:
        return _ids(
            s.exec(
                select(Instance.id).where(
                    Instance.events_mode == "pull",
                    col(Instance.events_subscription).is_not(None),
                )
            ).all()
        )


def resend_received(settings: Settings, send_event: SendEvent, now: datetime) -> list[int]:
    """Send again events stored but still not processed a minute after they came (the message
    was lost, the worker died, or Google failed for a moment): nothing is lost."""
    with session_scope(settings.database_url) as s:
        ids = list(
            s.exec(
                select(GoogleEvent.id)
                .where(
                    GoogleEvent.state == EventState.RECEIVED,
                    col(GoogleEvent.received_at) < now - RESEND_AFTER,
                )
                .order_by(col(GoogleEvent.event_time), col(GoogleEvent.id))
                .limit(RESEND_LIMIT)
            ).all()
        )
    for event_id in ids:
        if event_id is not None:
            send_event(event_id)
    return [i for i in ids if i is not None]


def events_tick(
    settings: Settings,
    now: datetime,
    send_event: SendEvent,
    *,
    send_webhook: SendWebhook | None = None,
    state: TickState | None = None,
) -> TickResult:
    """One round: pull for pull-mode instances (each every BSS_EVENTS_PULL_INTERVAL_SECONDS),
    reconcile the instances that are due (BSS_RECONCILE_INTERVAL_SECONDS; 0: never), and send
    again events a worker has not processed within a minute (at most once a minute)."""
    state = state or TickState()
    result = TickResult()
    pull_every = timedelta(seconds=settings.events_pull_interval_seconds)
    for instance_id in _pull_mode(settings):
        last = state.last_pull.get(instance_id)
        if last is not None and now - last < pull_every:
            continue
        state.last_pull[instance_id] = now
        try:
            with session_scope(settings.database_url) as s:
                instance = s.get(Instance, instance_id)
                if instance is not None:
                    n = pull_once(s, settings, instance, send_event=send_event)
                    result.pulled[instance_id] = n
        except BssError as exc:
            result.failed[instance_id] = f"pull: {exc.message}"
            log.warning("pulling notifications of instance %s failed: %s", instance_id, exc)
    for instance_id in _due_reconcile(settings, now):
        if not _claim_reconcile(settings, instance_id, now):
            continue  # another scheduler took it
        try:
            report = reconcile(settings, instance_id, send_webhook=send_webhook)
        except BssError as exc:
            result.failed[instance_id] = f"reconcile: {exc.message}"
            log.warning("reconciling instance %s failed: %s", instance_id, exc)
            continue
        result.reconciled.append(instance_id)
        log.info(
            "reconciled %s: %d calls, %d subscriptions, %d changes missed, %d drift open",
            report.instance,
            report.calls,
            report.subscriptions,
            len(report.missed),
            len(report.drift),
        )
    if state.last_resend is None or now - state.last_resend >= RESEND_AFTER:
        state.last_resend = now
        result.resent = resend_received(settings, send_event, now)
        if result.resent:
            log.info("sent %d unprocessed Google event(s) to the workers again", len(result.resent))
    return result


def events_forever(
    settings: Settings,
    send_event: SendEvent,
    stop: threading.Event,
    *,
    send_webhook: SendWebhook | None = None,
) -> None:
    """Run `events_tick` every few seconds until `stop` is set (the scheduler's thread)."""
    state = TickState()
    every = min(settings.events_pull_interval_seconds, 5.0)
    while not stop.is_set():
        try:
            events_tick(settings, utcnow(), send_event, send_webhook=send_webhook, state=state)
        except Exception:  # the scheduler must outlive a database or Google hiccup
            log.exception("events tick failed; trying again shortly")
        stop.wait(every)
