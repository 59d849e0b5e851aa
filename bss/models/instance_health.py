"""What the last Check of an instance found."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from bss.models.base import utcnow


class InstanceHealth(SQLModel, table=True):
    """The outcome of the latest Check (or service-account verify) of one instance."""

    __tablename__ = "instance_health"

    instance_id: int = Field(foreign_key="instance.id", primary_key=True)
    checked_at: datetime = Field(default_factory=utcnow)
    ok: bool = False
    # When the access token obtained by the check stops working (never the token itself).
    access_token_expires_at: datetime | None = None
    results: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
