"""The mail outbox: every e-mail is a row first (MailMessage), sent by a worker through a mail
sender, retried with backoff, and listed on the dashboard.

A message goes through the sender it names (a test message), else the distributor's default
working sender, another working one of the distributor, then the platform's. A sender whose grant
Google refuses is marked failing and reported (an alert mailed through another sender, and shown
on the dashboard); the message then goes through the next working sender, if any.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import timedelta

from sqlmodel import Session, col, select

from bss.accounts import ALL
from bss.db import session_scope
from bss.errors import BssError, GoogleAuthorizationError, QuotaWait, TransientGoogleError
from bss.gateway import MailSent, send_as_sender
from bss.models import (
    Instance,
    InstanceStatus,
    MailMessage,
    MailSender,
    MailState,
    SenderMode,
    SenderStatus,
    utcnow,
)
from bss.notify.conditions import sender_failed, sender_works
from bss.notify.webhooks import retry_delay
from bss.settings import Settings

log = logging.getLogger(__name__)

# Sends a message's id to the mail queue again, after a delay in milliseconds.
SendMail = Callable[[str, int], None]

NO_SENDER = "No mail sender is set up: add one on the Notifications page"
# Senders tried for one message in one go, when each in turn turns out to be dead.
MAX_SENDERS_PER_ATTEMPT = 5
MAX_ERROR_CHARS = 500


def queue_mail(
    session: Session,
    *,
    distributor_id: int | None,
    topic: str,
    recipients: Iterable[str],
    subject: str,
    body: str,
    sender_id: int | None = None,
    alert_id: str | None = None,
) -> MailMessage:
    """Write a mail to send (pending); after commit send its id to the mail queue. With
    `sender_id` it goes through that sender only (a test message); else through the owner's."""
    unique: dict[str, str] = {}
    for address in recipients:
        if address.strip():
            unique.setdefault(address.strip().lower(), address.strip())
    message = MailMessage(
        distributor_id=distributor_id,
        topic=topic,
        sender_id=sender_id,
        alert_id=alert_id,
        recipients=list(unique.values()),
        subject=subject[:300],
        body=body,
        enqueued_at=utcnow(),
    )
    session.add(message)
    return message


def recent_mail(session: Session, distributor_id: int | None, limit: int = 50) -> list[MailMessage]:
    """The latest mail, newest first: a distributor's, or everyone's (ALL)."""
    query = select(MailMessage)
    if distributor_id is not ALL:
        query = query.where(MailMessage.distributor_id == distributor_id)
    return list(session.exec(query.order_by(col(MailMessage.created_at).desc()).limit(limit)))


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def works(sender: MailSender, instance: Instance | None) -> bool:
    """Whether a sender can be chosen: it works, and a Gmail API sender's instance too."""
    if sender.status != SenderStatus.OK:
        return False
    if sender.mode == SenderMode.GMAIL_API:
        return instance is not None and instance.status == InstanceStatus.AUTHENTICATED
    return True


def _owned_by(session: Session, owner: int | None) -> list[MailSender]:
    column = col(MailSender.distributor_id)
    query = select(MailSender).where(column.is_(None) if owner is None else column == owner)
    return list(session.exec(query.order_by(col(MailSender.is_default).desc(), col(MailSender.id))))


def choose_sender(
    session: Session, *, distributor_id: int | None, sender_id: int | None
) -> tuple[MailSender, Instance | None] | str:
    """The sender (and its instance) a message goes through, or why there is none."""
    if sender_id is not None:
        sender = session.get(MailSender, sender_id)
        if sender is None:
            return "The mail sender of this message was removed."
        instance = session.get(Instance, sender.instance_id) if sender.instance_id else None
        return sender, instance
    owners = [distributor_id, None] if distributor_id is not None else [None]
    seen: list[MailSender] = []
    for owner in owners:
        for sender in _owned_by(session, owner):
            instance = session.get(Instance, sender.instance_id) if sender.instance_id else None
            if works(sender, instance):
                return sender, instance
            seen.append(sender)
    if not seen:
        return NO_SENDER
    names = ", ".join(f"{s.name} ({s.status})" for s in seen)
    return (
        f"No mail sender works ({names}): authenticate one again on the Notifications page, or "
        "check its instance."
    )


def deliver_mail(settings: Settings, message_id: str, *, resend: SendMail) -> str | None:
    """One attempt at sending a pending message (the mail queue's worker calls this).

    Returns the message's state afterwards (None: unknown, finished, or not due yet).
    """
    now = utcnow()
    with session_scope(settings.database_url) as s:
        message = s.get(MailMessage, message_id)
        if message is None or message.state != MailState.PENDING:
            return None
        if message.next_attempt_at and message.next_attempt_at > now + timedelta(seconds=1):
            return None  # an early duplicate: the delayed message will come
        fixed, owner = message.sender_id, message.distributor_id
        to, subject, body = list(message.recipients), message.subject, message.body
    if not to:
        return _finish(settings, message_id, None, error="The message has no recipients.")
    refused: list[str] = []
    for _ in range(MAX_SENDERS_PER_ATTEMPT):
        with session_scope(settings.database_url) as s:
            choice = choose_sender(s, distributor_id=owner, sender_id=fixed)
        if isinstance(choice, str):
            error = choice if not refused else f"{choice} Refused: {'; '.join(refused)}"
            return _finish(settings, message_id, None, error=error)
        sender, instance = choice
        try:
            sent = send_as_sender(
                settings, sender=sender, instance=instance, to=to, subject=subject, body=body
            )
        except GoogleAuthorizationError as exc:
            sender_failed(settings, sender, exc)
            refused.append(f"{sender.name}: {exc.message}")
            if fixed is not None:
                return _finish(settings, message_id, sender.id, error=refused[-1])
            continue  # the next working sender, if any
        except (TransientGoogleError, QuotaWait) as exc:
            return _later(settings, message_id, sender, exc, resend)
        except BssError as exc:  # Google refused the message itself: retrying cannot help
            error = f"{sender.name}: {exc.message}" + (f" {exc.hint}" if exc.hint else "")
            return _finish(settings, message_id, sender.id, error=error)
        except Exception as exc:  # unforeseen: counted like a passing failure, so that it ends
            log.exception("mail %s: sending through %s failed unexpectedly", message_id, sender.id)
            unforeseen = TransientGoogleError(
                f"Unexpected error while sending ({type(exc).__name__})"
            )
            return _later(settings, message_id, sender, unforeseen, resend)
        return _sent(settings, message_id, sender, sent)
    return _finish(settings, message_id, None, error="; ".join(refused))


def _sent(settings: Settings, message_id: str, sender: MailSender, sent: MailSent) -> str:
    now = utcnow()
    with session_scope(settings.database_url) as s:
        message = s.get(MailMessage, message_id)
        assert message is not None
        message.state, message.sent_at, message.next_attempt_at = MailState.SENT, now, None
        message.attempts += 1
        message.sender_id = sender.id
        message.provider_id = (sent.provider_id or "")[:200] or None
        message.last_error = (
            _clip("Not delivered to " + "; ".join(f"{a} ({r})" for a, r in sent.refused.items()))
            if sent.refused
            else None
        )
        s.add(message)
        row = s.get(MailSender, sender.id)
        if row is not None:
            row.last_sent_at = now
            if sent.access_token_expires_at is not None:
                row.access_token_expires_at = sent.access_token_expires_at
            if row.status == SenderStatus.FAILING:
                sender_works(s, row)
            s.add(row)
    log.info("mail %s sent through %s (%s)", message_id, sender.name, sender.mode)
    return MailState.SENT


def _later(
    settings: Settings,
    message_id: str,
    sender: MailSender,
    exc: BssError,
    resend: SendMail,
) -> str:
    """Google could not take it now: the next attempt after a backoff, or give up."""
    now = utcnow()
    with session_scope(settings.database_url) as s:
        message = s.get(MailMessage, message_id)
        assert message is not None
        message.attempts += 1
        message.last_error = _clip(f"{sender.name}: {exc.message}")
        if message.attempts >= settings.mail_max_attempts:
            message.state, message.next_attempt_at = MailState.FAILED, None
            message.last_error = _clip(
                f"Given up after {message.attempts} attempts: {message.last_error}"
            )
            delay = None
        else:
            delay = retry_delay(
                message.attempts,
                base=settings.mail_retry_base_seconds,
                maximum=settings.mail_retry_max_seconds,
            )
            told = getattr(exc, "retry_after", None) or getattr(exc, "seconds", None)
            delay = max(delay, float(told or 0.0))
            message.next_attempt_at = now + timedelta(seconds=delay)
            message.enqueued_at = now
        s.add(message)
        state = message.state
    log.info("mail %s not sent yet (%s); next in %ss", message_id, exc.message, delay)
    if delay is not None:
        resend(message_id, int(delay * 1000))
    return state


def _finish(settings: Settings, message_id: str, sender_id: int | None, *, error: str) -> str:
    """The message cannot be sent: failed, with a reason people can act on."""
    with session_scope(settings.database_url) as s:
        message = s.get(MailMessage, message_id)
        assert message is not None
        message.state, message.next_attempt_at = MailState.FAILED, None
        message.attempts += 1
        message.sender_id = sender_id or message.sender_id
        message.last_error = _clip(error)
        s.add(message)
    log.warning("mail %s failed: %s", message_id, error)
    return MailState.FAILED
