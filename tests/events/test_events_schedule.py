"""The scheduler's round for Google's notifications: due instances reconciled once (one process
wins), pull-mode instances pulled, events a worker never took sent again after a minute."""

from __future__ import annotations

import uuid
from datetime import timedelta

from bss.db import session_scope
from bss.events import TickState, events_tick, register_events
from bss.models import GoogleEvent, Instance, utcnow
from tests.support.reseller_notify import (
    console,
    customer,
    events_settings,
    instance_of,
    new_reseller,
    platform_key,
)


def test_a_due_instance_is_reconciled_once_per_interval(settings, sandbox):
    s = events_settings(settings, sandbox, None, BSS_RECONCILE_INTERVAL_SECONDS=3600)
    instance_id = instance_of(s, new_reseller(sandbox))
    now = utcnow()
    first = events_tick(s, now, lambda _id: None)
    assert instance_id in first.reconciled
    # A second scheduler (its own state) a moment later finds nothing due
    moment = events_tick(s, now + timedelta(seconds=5), lambda _id: None)
    assert instance_id not in moment.reconciled
    later = events_tick(s, now + timedelta(hours=2), lambda _id: None)
    assert instance_id in later.reconciled
    off = events_settings(settings, sandbox, None, BSS_RECONCILE_INTERVAL_SECONDS=0)
    assert events_tick(off, now + timedelta(hours=9), lambda _id: None).reconciled == []


def test_pull_mode_instances_are_pulled_and_old_unprocessed_events_sent_again(
    settings, sandbox, tmp_path
):
    s = events_settings(
        settings, sandbox, platform_key(sandbox, tmp_path), BSS_RECONCILE_INTERVAL_SECONDS=0
    )
    reseller = new_reseller(sandbox)
    instance_id = instance_of(s, reseller)
    with session_scope(s.database_url) as db:
        register_events(db, s, db.get(Instance, instance_id), "pull")
    domain = f"acme-{uuid.uuid4().hex[:6]}.example"
    customer(reseller, domain)
    console(sandbox, domain, {"seats": 4})
    sent: list[int] = []
    state = TickState()
    now = utcnow()
    tick = events_tick(s, now, sent.append, state=state)
    assert tick.pulled[instance_id] == 1
    # (other tests' pull-mode instances in this database may have had events of their own)
    with session_scope(s.database_url) as db:
        ours_sent = [i for i in sent if db.get(GoogleEvent, i).instance_id == instance_id]
    assert len(ours_sent) == 1
    ours = ours_sent[0]
    # Nobody processed it: a minute later it is sent to a worker again, once per minute
    with session_scope(s.database_url) as db:
        event = db.get(GoogleEvent, ours)
        event.received_at = now - timedelta(seconds=90)
        db.add(event)
    again = events_tick(s, now + timedelta(seconds=61), sent.append, state=state)
    assert ours in again.resent and sent.count(ours) == 2
    soon = events_tick(s, now + timedelta(seconds=70), sent.append, state=state)
    assert ours not in soon.resent and sent.count(ours) == 2
