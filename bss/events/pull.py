"""Pulling an instance's notifications when the platform has no public URL for pushes.

Messages are stored first (once each, by messageId) and committed, then acknowledged: a crash
in between only means Pub/Sub delivers them again, and the copy is recognised. Each new event
goes to a worker after commit, as a pushed one does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlmodel import Session

from bss.errors import BssError
from bss.events.ingest import store_message
from bss.gateway import PubSubClient
from bss.models import EventState, Instance, utcnow
from bss.settings import Settings

log = logging.getLogger(__name__)

#: Pulls in one round at most (100 messages each), so that one busy instance does not hold the
#: scheduler; what is left waits for the next round.
MAX_PULLS = 10
PULL_SIZE = 100


def pull_once(
    session: Session,
    settings: Settings,
    instance: Instance,
    *,
    send_event: Callable[[int], None] | None = None,
    pubsub: PubSubClient | None = None,
) -> int:
    """Pull what waits on the instance's subscription: store, commit, acknowledge, then send
    each new event to a worker. Returns the number of new events stored.

    A pull that Google refuses is recorded on the instance (`events_error`) and raised.
    """
    if instance.events_mode != "pull" or not instance.events_subscription:
        return 0
    pubsub = pubsub or PubSubClient.from_settings(settings)
    if pubsub is None:
        return 0
    subscription = instance.events_subscription
    stored = 0
    for _ in range(MAX_PULLS):
        try:
            received = pubsub.pull(subscription, max_messages=PULL_SIZE)
        except BssError as exc:
            instance.events_error = f"Pulling notifications failed ({exc.message})."[:500]
            session.add(instance)
            session.commit()
            raise
        if not received:
            break
        ack_ids, new_ids = [], []
        for item in received:
            ack_id = item.get("ackId")
            try:
                event, new = store_message(
                    session, message=item.get("message"), subscription=subscription, source="pull"
                )
            except ValueError as exc:
                # Not a Pub/Sub message we can read: acknowledged, or it comes back forever.
                log.warning("dropped an unreadable message on %s: %s", subscription, exc)
            else:
                if new and event.state == EventState.RECEIVED and event.id is not None:
                    new_ids.append(event.id)
                stored += int(new)
            if ack_id:
                ack_ids.append(str(ack_id))
        if instance.events_error:
            instance.events_error = None
            instance.updated_at = utcnow()
            session.add(instance)
        session.commit()
        pubsub.acknowledge(subscription, ack_ids)
        for event_id in new_ids:
            if send_event is not None:
                send_event(event_id)
        if len(received) < PULL_SIZE:
            break
    return stored
