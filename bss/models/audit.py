"""The audit log: every state-changing action, who, what, when, from where."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from bss.models.base import utcnow


class AuditEntry(SQLModel, table=True):
    """One action taken by a person or a system: never holds a secret."""

    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_distributor_at", "distributor_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=300)
    distributor_id: int | None = Field(default=None, foreign_key="distributor.id")
    action: str = Field(max_length=64)
    target: str = Field(default="", max_length=300)
    source_ip: str | None = Field(default=None, max_length=64)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
