"""Webhook deliveries: one row per event sent (or to be sent) to a distributor's billing system."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from bss.models.base import new_id, utcnow


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookDelivery(SQLModel, table=True):
    """An event for a distributor's webhook URL, with the outcome of its latest attempt."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (Index("ix_webhook_delivery_state_updated", "state", "updated_at"),)

    id: str = Field(default_factory=lambda: new_id("whd"), primary_key=True, max_length=40)
    distributor_id: int = Field(foreign_key="distributor.id", index=True)
    job_id: str | None = Field(default=None, foreign_key="job.id", index=True, max_length=40)
    instance_id: int | None = Field(default=None, foreign_key="instance.id")
    event: str = Field(max_length=64)
    # The event body exactly as signed and sent (never a secret).
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: str = Field(default=DeliveryState.PENDING, max_length=16)
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    next_attempt_at: datetime | None = None
    enqueued_at: datetime | None = None
    delivered_at: datetime | None = None
