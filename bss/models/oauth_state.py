"""Pending OAuth authorizations: what a callback's `state` must match."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from bss.models.base import utcnow


class OAuthPurpose(StrEnum):
    INSTANCE = "instance"  # Authenticate Instance
    SIGN_IN = "sign_in"  # Sign in with Google
    MAIL_SENDER = "mail_sender"  # a mailbox consenting to send notifications (SMTP XOAUTH2)


class OAuthState(SQLModel, table=True):
    """One authorization in flight, kept in the database so any web process can finish it.

    Only a hash of `state` is stored; the PKCE code verifier is stored encrypted.
    """

    __tablename__ = "oauth_state"

    state_hash: str = Field(primary_key=True, max_length=64)
    purpose: str = Field(max_length=16)
    user_id: int | None = Field(default=None, foreign_key="portal_user.id", index=True)
    instance_id: int | None = Field(default=None, foreign_key="instance.id", index=True)
    sender_id: int | None = Field(default=None, foreign_key="mail_sender.id")
    # The Client ID the flow started with: an edit in between makes the state stale.
    client_id: str = Field(default="", max_length=300)
    # Hash of a random id kept in the starting browser's session cookie.
    browser_hash: str = Field(max_length=64)
    redirect_uri: str = Field(max_length=2000)
    code_verifier_enc: str
    nonce: str | None = Field(default=None, max_length=100)
    display: str = Field(default="popup", max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)
    used_at: datetime | None = None
