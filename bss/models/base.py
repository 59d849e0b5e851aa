"""Shared column helpers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Protocol


def utcnow() -> datetime:
    """Now, timezone-aware UTC: SQLModel stores and returns every datetime column in UTC."""
    return datetime.now(UTC)


class _HasId(Protocol):
    id: int | None


def saved_id(row: _HasId) -> int:
    """The integer primary key of a row that has been flushed (it is None before that)."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id yet: it was never flushed")
    return row.id


def new_id(prefix: str) -> str:
    """A random public identifier such as `job_3f2c...`."""
    return f"{prefix}_{uuid.uuid4().hex}"


def iso(dt: datetime | None) -> str | None:
    """A UTC timestamp as ISO 8601 with a Z."""
    if dt is None:
        return None
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
