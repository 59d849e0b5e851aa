"""E-mail notifications: who sends (a Google account, with OAuth), who is told what, the alerts
that are open, and every message sent or to be sent."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from bss.models.base import new_id, utcnow


class SenderMode(StrEnum):
    # The Gmail API as an authenticated instance's user (gmail.send), as the welcome mail does
    GMAIL_API = "gmail_api"
    # SMTP with XOAUTH2 (smtp.gmail.com:587, STARTTLS), a mailbox with its own consent
    # (https://mail.google.com/), through an instance's OAuth client
    SMTP_XOAUTH2 = "smtp_xoauth2"
    # A service account with domain-wide delegation impersonating the sender address
    SERVICE_ACCOUNT = "service_account"


class SenderStatus(StrEnum):
    NOT_AUTHENTICATED = "not_authenticated"
    OK = "ok"
    # Google refused the sender's grant (revoked, expired, not delegated): re-authenticate
    FAILING = "failing"


class NotifyTopic(StrEnum):
    """What people can be told about."""

    INSTANCE_NEEDS_REAUTH = "instance.needs_reauth"
    INSTANCE_TOKEN_EXPIRING = "instance.token_expiring"  # noqa: S105
    JOBS_FAILED = "jobs.failed"
    DRIFT_FOUND = "drift.found"
    WEBHOOKS_FAILING = "webhooks.failing"
    SENDER_FAILING = "sender.failing"
    TEST = "test"


class MailState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class MailSender(SQLModel, table=True):
    """A Google account notifications are sent through. `distributor_id` None: the platform's
    own sender (operators' mail, and any distributor without a sender of its own)."""

    __tablename__ = "mail_sender"
    __table_args__ = (UniqueConstraint("distributor_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    distributor_id: int | None = Field(default=None, foreign_key="distributor.id", index=True)
    name: str = Field(max_length=100)
    mode: str = Field(max_length=32)
    # The address mail comes from (the authenticated mailbox, or the impersonated user)
    from_address: str = Field(default="", max_length=320)
    # gmail_api: the instance whose authenticated user sends; smtp_xoauth2: the instance whose
    # OAuth client (Client ID and secret) the mailbox consented to
    instance_id: int | None = Field(default=None, foreign_key="instance.id")
    # smtp_xoauth2: the mailbox's own refresh token (https://mail.google.com/), encrypted
    refresh_token_enc: str | None = None
    granted_scopes: str = Field(default="")
    # service_account: the JSON key, encrypted
    service_account_key_enc: str | None = None
    is_default: bool = False
    status: str = Field(default=SenderStatus.NOT_AUTHENTICATED, max_length=32)
    last_error: str | None = Field(default=None, max_length=500)
    authenticated_at: datetime | None = None
    # What "Generate Token" shows: until when the last access token and the refresh token work
    # (the refresh token's only when Google gave it a lifetime, e.g. a consent screen in Testing)
    access_token_expires_at: datetime | None = None
    refresh_token_expires_at: datetime | None = None
    last_sent_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class NotificationRecipient(SQLModel, table=True):
    """Someone told about some topics: an address, or every admin of the distributor.
    `distributor_id` None: a platform operator's recipient, told about every distributor."""

    __tablename__ = "notification_recipient"

    id: int | None = Field(default=None, primary_key=True)
    distributor_id: int | None = Field(default=None, foreign_key="distributor.id", index=True)
    # An address, or None with all_admins set
    address: str | None = Field(default=None, max_length=320)
    all_admins: bool = False
    # NotifyTopic values this recipient is told about
    topics: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class Alert(SQLModel, table=True):
    """A condition people are told about once, reminded of while it lasts, and that closes when
    it clears: one open alert per `key` (e.g. `instance.needs_reauth:12`). Digests are alerts
    too: `jobs.failed:<distributor>:<hour>` counts the failures of one hour, told once."""

    __tablename__ = "alert"
    __table_args__ = (
        UniqueConstraint("key", "opened_at"),
        Index("ix_alert_open", "resolved_at", "next_notify_at"),
    )

    id: str = Field(default_factory=lambda: new_id("alr"), primary_key=True, max_length=40)
    key: str = Field(max_length=200, index=True)
    topic: str = Field(max_length=64)
    distributor_id: int | None = Field(default=None, foreign_key="distributor.id", index=True)
    instance_id: int | None = Field(default=None, foreign_key="instance.id")
    # What the mail says: the subject line and facts to show (never a secret)
    title: str = Field(max_length=300)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # How many times the condition was seen while open (failed jobs in a digest)
    count: int = 1
    opened_at: datetime = Field(default_factory=utcnow)
    resolved_at: datetime | None = None
    # When to mail next (at once, a reminder, or a digest's end); None: nothing more to send
    next_notify_at: datetime | None = None
    notified_count: int = 0
    last_notified_at: datetime | None = None


class MailMessage(SQLModel, table=True):
    """One e-mail: written first, sent by a worker with retries and backoff, listed on the
    dashboard. The body is kept only when it holds no secret (notifications never do)."""

    __tablename__ = "mail_message"
    __table_args__ = (Index("ix_mail_message_state_next", "state", "next_attempt_at"),)

    id: str = Field(default_factory=lambda: new_id("mail"), primary_key=True, max_length=40)
    distributor_id: int | None = Field(default=None, foreign_key="distributor.id", index=True)
    alert_id: str | None = Field(default=None, foreign_key="alert.id", index=True, max_length=40)
    topic: str = Field(max_length=64)
    sender_id: int | None = Field(default=None, foreign_key="mail_sender.id")
    recipients: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    subject: str = Field(max_length=300)
    body: str = Field(default="")
    state: str = Field(default=MailState.PENDING, max_length=16)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    # Google's id of the sent message (Gmail API), or the SMTP server's queue reply
    provider_id: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    next_attempt_at: datetime | None = None
    enqueued_at: datetime | None = None
    sent_at: datetime | None = None
