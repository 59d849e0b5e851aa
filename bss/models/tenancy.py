"""Distributors (the tenants) and their API keys."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from bss.models.base import utcnow


class Distributor(SQLModel, table=True):
    """A reseller of Google Workspace using this service: the unit of tenancy."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    slug: str = Field(max_length=100, unique=True, index=True)
    webhook_url: str | None = Field(default=None, max_length=2000)
    webhook_secret_enc: str | None = Field(default=None)
    # Fair sharing of the workers: this distributor's share relative to others (1.0 = equal),
    # and an optional cap on its jobs sent to workers at once (None: from the settings)
    weight: float = Field(default=1.0)
    max_in_flight: int | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow)


class ApiKey(SQLModel, table=True):
    """A billing system's credential: only a hash of the key is kept."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    distributor_id: int = Field(foreign_key="distributor.id", index=True)
    label: str = Field(default="", max_length=200)
    prefix: str = Field(max_length=16, index=True)
    key_hash: str = Field(max_length=128, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
