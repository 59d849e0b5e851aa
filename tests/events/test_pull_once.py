"""Pulling an instance's notifications (no public URL): each message stored once, for the right
instance, committed before it is acknowledged, and handed to a worker; against the sandbox's
Pub/Sub over HTTP."""

from __future__ import annotations

import uuid

from sqlmodel import select

from bss.db import session_scope
from bss.events import pull_once, register_events
from bss.gateway import PubSubClient
from bss.gateway.pubsub import read_platform_key
from bss.models import GoogleEvent, Instance
from tests.support.reseller_notify import (
    console,
    customer,
    events_settings,
    get,
    instance_of,
    new_reseller,
    platform_key,
    post,
)


def _pull(settings, instance_id: int, sent: list[int]) -> int:
    with session_scope(settings.database_url) as s:
        return pull_once(s, settings, s.get(Instance, instance_id), send_event=sent.append)


def _pulling(settings, sandbox, tmp_path):
    s = events_settings(settings, sandbox, platform_key(sandbox, tmp_path))
    reseller = new_reseller(sandbox)
    instance_id = instance_of(s, reseller)
    with session_scope(s.database_url) as db:
        instance = db.get(Instance, instance_id)
        register_events(db, s, instance, "pull")
        assert instance.events_error is None
        subscription = instance.events_subscription
    return s, reseller, instance_id, subscription


def test_a_pulled_change_is_stored_for_its_instance_acknowledged_and_sent(
    settings, sandbox, tmp_path
):
    # Given an instance in pull mode, and a seat change made in the Admin console
    s, reseller, instance_id, subscription = _pulling(settings, sandbox, tmp_path)
    domain = f"acme-{uuid.uuid4().hex[:6]}.example"
    customer(reseller, domain, seats=5)
    console(sandbox, domain, {"seats": 7})
    # When the scheduler pulls
    sent: list[int] = []
    assert _pull(s, instance_id, sent) == 1
    # Then the event is stored once, for that instance, and a worker is asked to process it
    with session_scope(s.database_url) as db:
        [event] = db.exec(select(GoogleEvent).where(GoogleEvent.instance_id == instance_id)).all()
        assert (event.source, event.customer_domain, event.state) == ("pull", domain, "received")
        assert event.subscription == subscription
        assert sent == [event.id]
    # And Pub/Sub holds nothing more for us: it was acknowledged
    assert get(sandbox, f"/_sandbox/pubsub/subscriptions/{subscription}")["pending"] == []
    assert _pull(s, instance_id, sent) == 0 and len(sent) == 1


class AckLost(PubSubClient):
    """The scheduler died after storing, before its acknowledgement reached Pub/Sub."""

    def acknowledge(self, name: str, ack_ids: list[str]) -> None:
        return None


def test_a_message_delivered_again_after_a_lost_ack_is_stored_once(settings, sandbox, tmp_path):
    s, reseller, instance_id, subscription = _pulling(settings, sandbox, tmp_path)
    domain = f"twice-{uuid.uuid4().hex[:6]}.example"
    customer(reseller, domain, seats=5)
    console(sandbox, domain, {"seats": 6})
    sent: list[int] = []
    key = read_platform_key(s.events_service_account_file)
    with session_scope(s.database_url) as db:
        lost = AckLost(settings=s, key=key)
        assert pull_once(db, s, db.get(Instance, instance_id), send_event=sent.append, pubsub=lost)
    # When Pub/Sub delivers it again once its ack deadline has passed
    post(sandbox, "/_sandbox/clock", {"advance_seconds": 120})
    assert _pull(s, instance_id, sent) == 0
    # Then it was stored and sent once, and is acknowledged now
    with session_scope(s.database_url) as db:
        stored = db.exec(select(GoogleEvent).where(GoogleEvent.instance_id == instance_id)).all()
    assert len(stored) == 1 and sent == [stored[0].id]
    assert get(sandbox, f"/_sandbox/pubsub/subscriptions/{subscription}")["pending"] == []
