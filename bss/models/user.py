"""Portal users (platform operators and distributor admins) and their signed-in sessions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from bss.models.base import utcnow


class UserRole(StrEnum):
    OPERATOR = "operator"  # sees every distributor
    DISTRIBUTOR_ADMIN = "distributor_admin"  # sees their own distributor only
    # Read-only on the dashboard: of their distributor if they have one, else of every one.
    VIEWER = "viewer"


class User(SQLModel, table=True):
    """Someone who signs in to the portal; only a password hash is kept, never the password."""

    # "user" is a reserved word in PostgreSQL.
    __tablename__ = "portal_user"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)
    name: str = Field(default="", max_length=200)
    role: str = Field(default=UserRole.DISTRIBUTOR_ADMIN, max_length=32)
    distributor_id: int | None = Field(default=None, foreign_key="distributor.id", index=True)
    password_hash: str | None = Field(default=None, max_length=300)
    # Google's stable account id, linked at the first Sign in with Google.
    google_sub: str | None = Field(default=None, max_length=255, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    last_sign_in_at: datetime | None = None
    disabled_at: datetime | None = None

    @property
    def is_operator(self) -> bool:
        return self.role == UserRole.OPERATOR


class UserSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random id; only its hash is stored, so a database
    reader cannot take over a session, and signing out ends it on every web process."""

    __tablename__ = "user_session"

    id_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="portal_user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
