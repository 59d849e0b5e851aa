"""What Google told us changed, what we want Google to hold, and where the two differ."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from bss.models.base import new_id, utcnow


class EventState(StrEnum):
    RECEIVED = "received"  # stored, not processed yet
    PROCESSED = "processed"  # the mirror was updated (and drift / webhooks recorded)
    IGNORED = "ignored"  # older than the mirror, or about nothing we manage (`note` says why)
    FAILED = "failed"  # processing failed for good (`note` says why); retried ones stay received


class GoogleEvent(SQLModel, table=True):
    """One notification from Google (a Pub/Sub message), stored once by its message id."""

    __tablename__ = "google_event"
    __table_args__ = (
        Index("ix_google_event_instance_received", "instance_id", "received_at"),
        Index("ix_google_event_state_received", "state", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # Pub/Sub's messageId: a message delivered twice is stored once.
    message_id: str = Field(max_length=200, unique=True)
    # The Pub/Sub subscription it came through, which names the instance
    subscription: str | None = Field(default=None, max_length=300)
    instance_id: int | None = Field(default=None, foreign_key="instance.id")
    distributor_id: int | None = Field(default=None, foreign_key="distributor.id")
    source: str = Field(default="push", max_length=16)  # push | pull
    event_type: str = Field(default="", max_length=100)
    # Google's time of the change (ordering), and Pub/Sub's publish time
    event_time: datetime | None = None
    publish_time: datetime | None = None
    customer_id: str | None = Field(default=None, max_length=64)
    customer_domain: str | None = Field(default=None, max_length=253)
    subscription_id: str | None = Field(default=None, max_length=64)
    sku_id: str | None = Field(default=None, max_length=100)
    # The decoded message data (Google's JSON) and the message attributes, as received
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: str = Field(default=EventState.RECEIVED, max_length=16)
    note: str | None = Field(default=None, max_length=500)
    received_at: datetime = Field(default_factory=utcnow)
    processed_at: datetime | None = None


class DriftState(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Drift(SQLModel, table=True):
    """A difference between what billing ordered (the desired state) and what Google holds."""

    __table_args__ = (
        Index("ix_drift_distributor_state", "distributor_id", "state", "detected_at"),
        Index("ix_drift_instance_state", "instance_id", "state"),
    )

    id: str = Field(default_factory=lambda: new_id("drift"), primary_key=True, max_length=40)
    distributor_id: int = Field(foreign_key="distributor.id")
    instance_id: int = Field(foreign_key="instance.id")
    customer_id: str = Field(max_length=64)
    customer_domain: str | None = Field(default=None, max_length=253)
    subscription_id: str | None = Field(default=None, max_length=64)
    sku_id: str | None = Field(default=None, max_length=100)
    # seats | plan | renewal | status | customer (transferred away) | exists (deleted at Google)
    field: str = Field(max_length=32)
    desired: Any = Field(default=None, sa_column=Column(JSON))
    actual: Any = Field(default=None, sa_column=Column(JSON))
    # The succeeded job that set the desired value (None: accepted from Google, or unknown)
    desired_job_id: str | None = Field(default=None, max_length=40)
    detected_by: str = Field(default="event", max_length=16)  # event | reconcile
    event_id: int | None = Field(default=None, foreign_key="google_event.id")
    state: str = Field(default=DriftState.OPEN, max_length=16)
    detected_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    resolved_at: datetime | None = None
    # accepted (Google's value is the new desired state) | restored (a job puts ours back) |
    # cleared (Google came back to the desired value by itself)
    resolution: str | None = Field(default=None, max_length=16)
    resolution_job_id: str | None = Field(default=None, max_length=40)
    resolved_by: str | None = Field(default=None, max_length=300)


class DesiredSubscription(SQLModel, table=True):
    """What billing wants a subscription to be: set by the last succeeded job that changed it,
    or by an operator or billing accepting Google's value when resolving drift."""

    __tablename__ = "desired_subscription"
    __table_args__ = (UniqueConstraint("instance_id", "customer_id", "sku_id"),)

    id: int | None = Field(default=None, primary_key=True)
    instance_id: int = Field(foreign_key="instance.id")
    customer_id: str = Field(max_length=64)
    sku_id: str = Field(max_length=100)
    subscription_id: str | None = Field(default=None, max_length=64)
    seats: int | None = None
    plan: str | None = Field(default=None, max_length=64)
    renewal: str | None = Field(default=None, max_length=64)
    status: str | None = Field(default=None, max_length=32)  # ACTIVE | SUSPENDED | CANCELLED
    # The job that set it (None when accepted from Google), and when: jobs that finished after
    # `set_at` are caught up before each comparison
    set_by_job_id: str | None = Field(default=None, max_length=40)
    set_at: datetime = Field(default_factory=utcnow)
