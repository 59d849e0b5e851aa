"""Secrets a job carries (an admin password), stored encrypted and wiped once delivered."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from bss.models.base import utcnow


class JobSecret(SQLModel, table=True):
    """One named secret of a job, encrypted with the vault; the row is deleted once delivered."""

    __tablename__ = "job_secret"
    __table_args__ = (UniqueConstraint("job_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="job.id", index=True, max_length=40)
    name: str = Field(max_length=64)
    value_enc: str
    # True: shown once to the billing system in the job's result, then deleted.
    reveal: bool = False
    created_at: datetime = Field(default_factory=utcnow)
