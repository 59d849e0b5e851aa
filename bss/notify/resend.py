"""Sending again what a worker never took: pending mail and webhook deliveries whose message is
overdue (lost with the broker, or taken by a worker that died). The database is the record, so
sending twice is harmless: delivering looks at the row first."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from bss.models import DeliveryState, MailMessage, MailState, WebhookDelivery

Outbox = TypeVar("Outbox", MailMessage, WebhookDelivery)


def lost_to_resend(
    session: Session,
    model: type[Outbox],
    *,
    sent_at: str,
    now: datetime,
    resend_after_seconds: float,
    limit: int,
) -> list[str]:
    """Pending rows of `model` last sent (their `sent_at`, or their retry's time) longer ago
    than `resend_after_seconds`, marked as sent `now`; their ids, for the caller to send."""
    stale = now - timedelta(seconds=resend_after_seconds)
    pending = MailState.PENDING if model is MailMessage else DeliveryState.PENDING
    rows = session.exec(
        select(model)
        .where(
            col(model.state) == pending,
            or_(
                and_(col(model.next_attempt_at).is_(None), getattr(model, sent_at) < stale),
                col(model.next_attempt_at) < stale,
            ),
        )
        .limit(limit)
    ).all()
    for row in rows:
        row.enqueued_at = now
        setattr(row, sent_at, now)
        row.next_attempt_at = None
        session.add(row)
    return [row.id for row in rows]
