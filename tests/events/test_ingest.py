"""store_message: a Pub/Sub message is stored once, mapped to the instance whose subscription
it came through, and a message that is not one is refused in words with nothing stored."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from sqlmodel import func, select

from bss.db import session_scope
from bss.events import store_message
from bss.models import Distributor, EventState, GoogleEvent, Instance
from bss.settings import Settings


def message(**data: Any) -> dict[str, Any]:
    body = {
        "eventType": "LICENSE_CAP_CHANGED",
        "eventTime": "2026-05-01T10:00:00.123456789Z",
        "customerId": "C0abc",
        "customerDomain": "shop.example",
        "subscriptionId": "123",
        "skuId": "1010020027",
        **data,
    }
    return {
        "data": base64.b64encode(json.dumps(body).encode()).decode(),
        "messageId": uuid.uuid4().hex,
        "publishTime": "2026-05-01T10:00:01Z",
    }


def count(settings: Settings) -> int:
    with session_scope(settings.database_url) as s:
        return int(s.exec(select(func.count()).select_from(GoogleEvent)).one())


def test_a_message_delivered_twice_is_stored_once_for_its_instance(
    settings: Settings, tenant: Distributor
) -> None:
    name = f"projects/p/subscriptions/bss-{uuid.uuid4().hex[:6]}"
    with session_scope(settings.database_url) as s:
        instance = s.exec(select(Instance).where(Instance.distributor_id == tenant.id)).one()
        instance.events_subscription = name
        s.add(instance)
    msg = message()
    with session_scope(settings.database_url) as s:
        first, new = store_message(s, message=msg, subscription=name, source="push")
        assert new and first.instance_id == instance.id and first.state == EventState.RECEIVED
        assert first.event_time is not None and first.event_time.microsecond == 123456
    with session_scope(settings.database_url) as s:
        again, new = store_message(s, message=dict(msg), subscription=name, source="pull")
        assert not new and again.id == first.id
        assert s.get(Instance, instance.id).last_event_at is not None  # type: ignore[union-attr]


def test_a_message_for_no_instance_of_ours_is_kept_as_ignored(settings: Settings) -> None:
    with session_scope(settings.database_url) as s:
        event, new = store_message(
            s, message=message(customerId="C0nobody"), subscription="projects/x/s/y", source="push"
        )
        assert new and event.state == EventState.IGNORED and "No instance" in (event.note or "")


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ("not a dict", "message must be an object"),
        ({"data": "e30="}, "messageId"),
        ({"messageId": "1", "data": "%%%"}, "base64-encoded JSON"),
        ({"messageId": "1", "data": base64.b64encode(b"[1]").decode()}, "JSON object"),
    ],
)
def test_what_is_not_a_pubsub_message_is_refused_in_words(
    settings: Settings, bad: Any, words: str
) -> None:
    before = count(settings)
    with session_scope(settings.database_url) as s, pytest.raises(ValueError, match=words):
        store_message(s, message=bad, subscription="projects/x/s/y", source="push")
    assert count(settings) == before
