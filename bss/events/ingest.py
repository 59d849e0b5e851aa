"""Taking in Google's notifications: decoding a Pub/Sub message (the one place that knows the
Reseller notification payload), storing it once by its messageId, and checking a push's token
and shape before anything is stored."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bss.gateway import PushTokenRefused, platform_service_account_email, verify_push_token
from bss.models import CustomerMirror, EventState, GoogleEvent, Instance, utcnow
from bss.settings import Settings

# Google's event types (its entitlement-event names, see docs/sandbox.md), grouped by what
# billing hears of them beside subscription.changed.
RENEWED = {"RENEWED"}
SUSPENDED = {"SUSPENDED"}
ENDED = {"CANCELLED"}
# cancellationReason of a customer that left us (another reseller, or Google direct)
TRANSFERRED = {"RELATIONSHIP_ENDED", "TRANSFERRED_TO_DIRECT", "TRANSFERRED_AWAY"}


class PushRefused(Exception):
    """A push we do not take: `status` 400 (not Pub/Sub's shape), 401 or 403 (its token)."""

    def __init__(self, message: str, *, status: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Decoded:
    """What a Pub/Sub message says, in our names."""

    message_id: str
    publish_time: datetime | None
    attributes: dict[str, Any]
    payload: dict[str, Any]
    event_type: str
    event_time: datetime | None
    customer_id: str | None
    customer_domain: str | None
    subscription_id: str | None
    sku_id: str | None


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time (`2026-05-01T10:00:00.123456Z`) as aware UTC, or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # Python wants at most 6 digits of fraction; Google may send 9
        digits = "".join(ch for ch in rest if ch.isdigit())
        text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _text(value: Any, limit: int) -> str | None:
    return str(value)[:limit] if value not in (None, "") else None


def decode_message(message: Any) -> Decoded:
    """A Pub/Sub message (`{"data": base64 JSON, "messageId", "publishTime", "attributes"}`)
    decoded; ValueError in words when it is not one."""
    if not isinstance(message, dict):
        raise ValueError("message must be an object")
    message_id = message.get("messageId") or message.get("message_id")
    if not isinstance(message_id, str) or not message_id.strip() or len(message_id) > 200:
        raise ValueError("message.messageId must be a string of at most 200 characters")
    raw = message.get("data")
    if not isinstance(raw, str):
        raise ValueError("message.data must be base64-encoded JSON")
    try:
        payload = json.loads(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError):
        raise ValueError("message.data must be base64-encoded JSON") from None
    if not isinstance(payload, dict):
        raise ValueError("message.data must encode a JSON object")
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise ValueError("message.attributes must be an object")

    def field(name: str) -> Any:
        return payload.get(name) if payload.get(name) not in (None, "") else attributes.get(name)

    publish_time = parse_time(message.get("publishTime") or message.get("publish_time"))
    return Decoded(
        message_id=message_id.strip(),
        publish_time=publish_time,
        attributes=attributes,
        payload=payload,
        event_type=str(field("eventType") or "")[:100],
        # Without Google's event time, the publish time is the best order we have.
        event_time=parse_time(field("eventTime")) or publish_time,
        customer_id=_text(field("customerId"), 64),
        customer_domain=_text(field("customerDomain"), 253),
        subscription_id=_text(field("subscriptionId"), 64),
        sku_id=_text(field("skuId"), 100),
    )


def _instance_for(session: Session, subscription: str | None, decoded: Decoded) -> Instance | None:
    """The instance whose Pub/Sub subscription it came through; else (a pull of an older
    subscription) the instance that mirrors the customer."""
    if subscription:
        found = session.exec(
            select(Instance).where(Instance.events_subscription == subscription)
        ).first()
        if found is not None:
            return found
    if decoded.customer_id:
        mirror = session.exec(
            select(CustomerMirror)
            .where(CustomerMirror.customer_id == decoded.customer_id)
            .order_by(col(CustomerMirror.id))
        ).first()
        if mirror is not None:
            return session.get(Instance, mirror.instance_id)
    return None


def store_message(
    session: Session, *, message: Any, subscription: str | None, source: str
) -> tuple[GoogleEvent, bool]:
    """Store a Pub/Sub message once (by messageId); the event and whether it is new.

    Raises ValueError in words when the message is not a Pub/Sub message. A message about no
    instance of ours is stored `ignored`, so that Pub/Sub stops delivering it.
    """
    decoded = decode_message(message)
    existing = _by_message_id(session, decoded.message_id)
    if existing is not None:
        return existing, False
    instance = _instance_for(session, subscription, decoded)
    event = GoogleEvent(
        message_id=decoded.message_id,
        subscription=_text(subscription, 300),
        instance_id=instance.id if instance else None,
        distributor_id=instance.distributor_id if instance else None,
        source=source,
        event_type=decoded.event_type,
        event_time=decoded.event_time,
        publish_time=decoded.publish_time,
        customer_id=decoded.customer_id,
        customer_domain=decoded.customer_domain,
        subscription_id=decoded.subscription_id,
        sku_id=decoded.sku_id,
        payload=decoded.payload,
        attributes=decoded.attributes,
    )
    if instance is None:
        event.state = EventState.IGNORED
        event.note = f"No instance of ours receives notifications through {subscription!r}."
        event.processed_at = utcnow()
    elif not decoded.customer_id or not decoded.sku_id:
        event.state = EventState.IGNORED
        event.note = "The notification names no customer and SKU."
        event.processed_at = utcnow()
    try:
        with session.begin_nested():  # a copy stored at the same moment by another process
            session.add(event)
    except IntegrityError:
        session.expunge(event)
        again = _by_message_id(session, decoded.message_id)
        if again is None:
            raise
        return again, False
    if instance is not None:
        instance.last_event_at = event.received_at
        session.add(instance)
    session.flush()
    return event, True


def _by_message_id(session: Session, message_id: str) -> GoogleEvent | None:
    return session.exec(select(GoogleEvent).where(GoogleEvent.message_id == message_id)).first()


def receive_push(
    session: Session, settings: Settings, *, authorization: str | None, envelope: Any
) -> tuple[GoogleEvent, bool]:
    """A push from Pub/Sub: its OIDC token checked (Google's, for our push URL, from the
    platform's service account), its shape checked, then stored once. PushRefused otherwise,
    with nothing stored."""
    try:
        verify_push_token(
            settings,
            authorization,
            audience=settings.push_url,
            service_account_email=platform_service_account_email(settings),
        )
    except PushTokenRefused as exc:
        raise PushRefused(exc.message, status=exc.status) from None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("message"), dict):
        raise PushRefused("The body is not a Pub/Sub push: no message object.", status=400)
    subscription = envelope.get("subscription")
    if not isinstance(subscription, str) or not subscription.strip():
        raise PushRefused("The body is not a Pub/Sub push: no subscription name.", status=400)
    try:
        return store_message(
            session, message=envelope["message"], subscription=subscription.strip(), source="push"
        )
    except ValueError as exc:
        raise PushRefused(f"The body is not a Pub/Sub push: {exc}.", status=400) from None
