"""The mail outbox against the sandbox, over HTTP (Gmail API) and SMTP (STARTTLS, XOAUTH2):
each sending mode delivers; a sender whose grant dies is refused with Google's answer, marked
failing, reported through another sender, and the message goes through that one; a passing
refusal is retried later; no sender at all is said in words."""

from __future__ import annotations

import uuid

import pytest
import requests
from sqlmodel import col, select

from bss.db import session_scope
from bss.models import (
    Alert,
    MailMessage,
    MailSender,
    MailState,
    NotifyTopic,
    SenderMode,
    SenderStatus,
)
from bss.notify import NO_SENDER, deliver_mail, notify_due, queue_mail
from bss.settings import Settings
from bss.tools import SandboxTenant, sandbox_tenant
from tests.support.mail import (
    MODES,
    add_recipient,
    add_sender,
    mail_to,
    mailbox,
    post,
    sender_of_mode,
    smtp_grant,
)


@pytest.fixture
def mail_settings(settings, sandbox, sandbox_smtp, redis_url) -> Settings:
    """Settings that reach the sandbox (HTTP and SMTP, its certificate trusted) and Redis (the
    shared token cache)."""
    host, port, ca_file = sandbox_smtp
    return Settings(
        BSS_HOME=settings.home,
        DATABASE_URL=settings.database_url,
        BSS_SECRET_KEYS=settings.secret_keys,
        REDIS_URL=redis_url,
        GOOGLE_SANDBOX_URL=sandbox,
        GOOGLE_SMTP_HOST=host,
        GOOGLE_SMTP_PORT=str(port),
        GOOGLE_SMTP_CA_FILE=ca_file,
        GOOGLE_HTTP_TIMEOUT="5",
    )


@pytest.fixture
def dist(mail_settings, sandbox) -> SandboxTenant:
    """A distributor with an instance authenticated at a sandbox reseller of its own."""
    return sandbox_tenant(sandbox, mail_settings, name=f"Mail {uuid.uuid4().hex[:8]}")


def queue(settings: Settings, distributor_id: int | None, to: str, **kw) -> str:
    with session_scope(settings.database_url) as s:
        return queue_mail(
            s,
            distributor_id=distributor_id,
            topic=kw.pop("topic", NotifyTopic.INSTANCE_NEEDS_REAUTH),
            recipients=[to],
            subject=kw.pop("subject", "[BSS] Instance acme/main needs re-authentication"),
            body="Google refused the credentials of instance acme/main.\n",
            **kw,
        ).id


def row(settings: Settings, model, key):
    with session_scope(settings.database_url) as s:
        return s.get(model, key)


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_sends_through_google(mail_settings, sandbox, dist, mode):
    # Given the distributor's sender of this mode
    sender_id, address = sender_of_mode(mail_settings, sandbox, dist, mode)
    to = f"ops-{uuid.uuid4().hex[:6]}@dist.example"

    # When a mail is queued and a worker sends it
    message_id = queue(mail_settings, dist.distributor_id, to)
    state = deliver_mail(mail_settings, message_id, resend=lambda *_: None)

    # Then Google took it, from the sender's address, by the way the mode says
    assert state == MailState.SENT
    (got,) = mail_to(sandbox, to)
    assert got["sender"] == address
    assert got["subject"] == "[BSS] Instance acme/main needs re-authentication"
    assert "Google refused the credentials" in got["body"]
    assert got["via"] == ("gmail_api" if mode == SenderMode.GMAIL_API else "smtp")
    message = row(mail_settings, MailMessage, message_id)
    assert message.sender_id == sender_id and message.attempts == 1
    assert message.provider_id and got["id"] in message.provider_id
    sender = row(mail_settings, MailSender, sender_id)
    assert sender.last_sent_at is not None
    if mode != SenderMode.GMAIL_API:  # what "Generate Token" shows
        assert sender.access_token_expires_at is not None


def test_without_any_sender_the_mail_fails_saying_so(mail_settings, dist):
    message_id = queue(mail_settings, dist.distributor_id, "ops@dist.example")
    # (no platform sender either: the platform's are made by other tests and removed here)
    with session_scope(mail_settings.database_url) as s:
        for sender in s.exec(select(MailSender).where(col(MailSender.distributor_id).is_(None))):
            sender.status = SenderStatus.NOT_AUTHENTICATED
            s.add(sender)
    state = deliver_mail(mail_settings, message_id, resend=lambda *_: None)
    message = row(mail_settings, MailMessage, message_id)
    assert state == MailState.FAILED
    assert message.last_error.startswith((NO_SENDER, "No mail sender works")), message.last_error


def test_a_revoked_mailbox_is_refused_with_googles_answer_and_reported_through_another(
    mail_settings, sandbox, dist, sandbox_url
):
    # Given the distributor's SMTP sender, which has sent (its access token is cached)...
    sender_id, address = sender_of_mode(mail_settings, sandbox, dist, SenderMode.SMTP_XOAUTH2)
    first = queue(mail_settings, dist.distributor_id, "ops@dist.example")
    assert deliver_mail(mail_settings, first, resend=lambda *_: None) == MailState.SENT
    # ...the platform's own sender, and an operator told when a sender fails
    other = sandbox_tenant(sandbox, mail_settings, name=f"Platform {uuid.uuid4().hex[:8]}")
    platform_id, platform_address = sender_of_mode(
        mail_settings, sandbox, other, SenderMode.GMAIL_API, platform=True
    )
    operator = f"op-{uuid.uuid4().hex[:6]}@platform.example"
    add_recipient(
        mail_settings, distributor_id=None, topics=[NotifyTopic.SENDER_FAILING], address=operator
    )

    # When the mailbox's owner revokes our access at Google, and a mail is to be sent
    post(sandbox, "/_sandbox/revoke", {"client_id": dist.client_id, "user": address})
    message_id = queue(mail_settings, dist.distributor_id, "ops@dist.example")
    state = deliver_mail(mail_settings, message_id, resend=lambda *_: None)

    # Then Gmail's SMTP refused the token in its words, and the sender shows it, failing
    sender = row(mail_settings, MailSender, sender_id)
    assert sender.status == SenderStatus.FAILING
    assert "535 5.7.8 Username and Password not accepted" in sender.last_error
    assert "XOAUTH2 status 401" in sender.last_error and "invalid_grant" in sender.last_error
    with session_scope(mail_settings.database_url) as s:
        secrets_of_sender = [s.get(MailSender, sender_id).refresh_token_enc]
    assert all(secret not in sender.last_error for secret in secrets_of_sender)
    # ...and the mail went through the platform's sender instead
    assert state == MailState.SENT
    assert row(mail_settings, MailMessage, message_id).sender_id == platform_id
    assert [m["sender"] for m in mail_to(sandbox, "ops@dist.example")][-1] == platform_address

    # When the scheduler runs: the operator is told, through the platform's sender
    queued: list[str] = []
    notify_due(mail_settings, queued.append)
    for mail_id in queued:
        deliver_mail(mail_settings, mail_id, resend=lambda *_: None)
    (report,) = mail_to(sandbox, operator)
    assert report["sender"] == platform_address
    assert f"Mail sender {sender.name} of " in report["subject"]
    assert "535 5.7.8" in report["body"]
    with session_scope(mail_settings.database_url) as s:
        alert = s.exec(select(Alert).where(Alert.key == f"sender.failing:{sender_id}")).one()
        assert alert.resolved_at is None  # until the mailbox is authenticated again


def test_a_mailbox_without_the_mail_scope_is_refused(mail_settings, sandbox, dist):
    # Given a mailbox that consented to gmail.send only (Gmail's SMTP needs mail.google.com)
    address = mailbox(sandbox, dist)
    scopes = ["https://www.googleapis.com/auth/gmail.send"]
    sender_id = add_sender(
        mail_settings,
        distributor_id=dist.distributor_id,
        mode=SenderMode.SMTP_XOAUTH2,
        from_address=address,
        instance_id=dist.instance_id,
        refresh_token=smtp_grant(sandbox, dist, address, scopes),
        scopes=scopes,
    )
    # When a test message goes through it
    message_id = queue(
        mail_settings, dist.distributor_id, "ops@dist.example", topic="test", sender_id=sender_id
    )
    state = deliver_mail(mail_settings, message_id, resend=lambda *_: None)

    # Then it fails with Google's answer (status 400: the scope), and no other sender is used
    message = row(mail_settings, MailMessage, message_id)
    assert state == MailState.FAILED and message.sender_id == sender_id
    assert "535 5.7.8" in message.last_error and "XOAUTH2 status 400" in message.last_error
    assert row(mail_settings, MailSender, sender_id).status == SenderStatus.FAILING
    assert mail_to(sandbox, "ops@dist.example") == []


def test_an_undelegated_service_account_is_refused_saying_what_to_delegate(
    mail_settings, sandbox, dist
):
    address = mailbox(sandbox, dist)
    project = post(sandbox, "/_sandbox/projects", {"reseller": dist.reseller})["project_id"]
    key = post(sandbox, "/_sandbox/service-accounts", {"project": project})
    sender_id = add_sender(
        mail_settings,
        distributor_id=dist.distributor_id,
        mode=SenderMode.SERVICE_ACCOUNT,
        from_address=address,
        key=key,
    )
    message_id = queue(
        mail_settings, dist.distributor_id, "ops@dist.example", topic="test", sender_id=sender_id
    )
    assert deliver_mail(mail_settings, message_id, resend=lambda *_: None) == MailState.FAILED
    sender = row(mail_settings, MailSender, sender_id)
    assert sender.status == SenderStatus.FAILING
    assert "unauthorized_client" in sender.last_error
    assert "Domain-wide delegation" in sender.last_error and "https://mail.google.com/" in (
        sender.last_error
    )


def test_a_passing_refusal_is_retried_later_and_the_sender_stays_ok(mail_settings, sandbox, dist):
    # Given an SMTP sender, and Gmail answering "too many login attempts" once
    sender_id, _ = sender_of_mode(mail_settings, sandbox, dist, SenderMode.SMTP_XOAUTH2)
    requests.post(
        f"{sandbox}/_sandbox/faults", json={"method": "smtp.auth", "status": 454}, timeout=10
    ).raise_for_status()
    message_id = queue(mail_settings, dist.distributor_id, "ops@dist.example")

    # When a worker tries: the message waits for its next attempt, sent again with a delay
    resent: list[tuple[str, int]] = []
    state = deliver_mail(mail_settings, message_id, resend=lambda m, ms: resent.append((m, ms)))
    assert state == MailState.PENDING
    assert [m for m, _ in resent] == [message_id] and resent[0][1] > 0
    message = row(mail_settings, MailMessage, message_id)
    assert message.attempts == 1 and "454 4.7.0 Too many login attempts" in message.last_error
    assert row(mail_settings, MailSender, sender_id).status == SenderStatus.OK

    # When the delayed attempt comes: it is sent
    with session_scope(mail_settings.database_url) as s:
        s.get(MailMessage, message_id).next_attempt_at = None
    assert deliver_mail(mail_settings, message_id, resend=lambda *_: None) == MailState.SENT
    assert len(mail_to(sandbox, "ops@dist.example")) == 1


def test_an_smtp_server_whose_certificate_is_not_trusted_gets_nothing(mail_settings, sandbox, dist):
    # Given the sandbox's self-signed certificate not trusted (no GOOGLE_SMTP_CA_FILE)
    untrusting = Settings(
        **{
            **mail_settings.model_dump(by_alias=True),
            "GOOGLE_SMTP_CA_FILE": "",
        }
    )
    sender_id, _ = sender_of_mode(untrusting, sandbox, dist, SenderMode.SMTP_XOAUTH2)
    message_id = queue(untrusting, dist.distributor_id, "ops@dist.example")

    # When a worker tries: the mail fails saying what to do, nothing is sent, the sender is OK
    assert deliver_mail(untrusting, message_id, resend=lambda *_: None) == MailState.FAILED
    error = row(untrusting, MailMessage, message_id).last_error
    assert "certificate that is not trusted" in error and "GOOGLE_SMTP_CA_FILE" in error
    assert mail_to(sandbox, "ops@dist.example") == []
    assert row(untrusting, MailSender, sender_id).status == SenderStatus.OK
