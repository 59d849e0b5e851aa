"""A distributor's connection to its Google reseller account."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from bss.models.base import utcnow


class InstanceStatus(StrEnum):
    NOT_AUTHENTICATED = "not_authenticated"
    AUTHENTICATED = "authenticated"
    NEEDS_REAUTH = "needs_reauth"
    DISABLED = "disabled"


class InstanceMode(StrEnum):
    OAUTH = "oauth"
    SERVICE_ACCOUNT = "service_account"


class Instance(SQLModel, table=True):
    """One Google reseller connection; secrets are stored only encrypted (`*_enc`)."""

    __table_args__ = (UniqueConstraint("distributor_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    distributor_id: int = Field(foreign_key="distributor.id", index=True)
    name: str = Field(max_length=100)
    mode: str = Field(default=InstanceMode.OAUTH, max_length=32)
    client_id: str = Field(default="", max_length=300)
    client_secret_enc: str | None = None
    refresh_token_enc: str | None = None
    service_account_key_enc: str | None = None
    delegated_admin: str | None = Field(default=None, max_length=300)
    status: str = Field(default=InstanceStatus.NOT_AUTHENTICATED, max_length=32, index=True)
    granted_scopes: str = Field(default="")
    authenticated_as: str | None = Field(default=None, max_length=300)
    authenticated_at: datetime | None = None
    last_refresh_at: datetime | None = None
    # When Google said the refresh token stops working (`refresh_token_expires_in`: a consent
    # screen in Testing, or time-limited access); None when it gave no lifetime
    refresh_token_expires_at: datetime | None = None
    last_error: str | None = None
    # Google API calls per second this instance's Cloud project may make, by API (reseller,
    # admin, licensing, gmail), overriding the defaults from the settings
    quotas: dict[str, float] | None = Field(default=None, sa_column=Column(JSON))
    # Google's notifications of changes to this reseller's customers (bss.events): off, push
    # (to our public endpoint) or pull (the platform pulls; no public URL needed)
    events_mode: str = Field(default="off", max_length=8)
    # resellernotify.register's topic, and our Pub/Sub subscription to it
    events_topic: str | None = Field(default=None, max_length=300)
    events_subscription: str | None = Field(default=None, max_length=300)
    events_registered_at: datetime | None = None
    events_error: str | None = Field(default=None, max_length=500)
    last_event_at: datetime | None = None
    last_reconciled_at: datetime | None = None
    # The last reconciliation: {"calls", "customers", "subscriptions", "drift", "missed", ...}
    last_reconcile: dict | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
