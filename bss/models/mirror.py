"""A local mirror of a customer as Google holds it, refreshed by customer.sync."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from bss.models.base import utcnow


class CustomerMirror(SQLModel, table=True):
    """The customer, its subscriptions, users and licenses as last read from Google."""

    __tablename__ = "customer_mirror"
    __table_args__ = (UniqueConstraint("instance_id", "customer_id"),)

    id: int | None = Field(default=None, primary_key=True)
    instance_id: int = Field(foreign_key="instance.id", index=True)
    customer_id: str = Field(max_length=64)
    domain: str = Field(max_length=253, index=True)
    customer: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    subscriptions: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    users: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    licenses: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    synced_at: datetime = Field(default_factory=utcnow)
    # When Google last confirmed this view (a sync, an event, a reconciliation), and the time of
    # the newest Google event applied to it: an older event changes nothing
    confirmed_at: datetime | None = None
    last_event_time: datetime | None = None
    # active | transferred_away (to another reseller or to Google direct) | deleted
    status: str = Field(default="active", max_length=32)
    sync_job_id: str | None = Field(default=None, max_length=40)
