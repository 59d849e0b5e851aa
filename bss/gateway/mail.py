"""E-mail through Google, as a mail sender (bss.models.MailSender) is set up to send it:

- `gmail_api`: the Gmail API as an authenticated instance's user (`gmail.send`), through the
  instance's Gateway: paced by its Cloud project's quota, retried, classified, as the welcome
  mail of `order.create` is sent;
- `smtp_xoauth2`: Gmail's SMTP server with XOAUTH2, for a mailbox that consented on its own
  (https://mail.google.com/) through an instance's OAuth client;
- `service_account`: Gmail's SMTP server with XOAUTH2 too, the token a service account's with
  domain-wide delegation of https://mail.google.com/, impersonating the sender's address (the
  way Mitel NuPoint does it; one scope to delegate, and no Gmail API to enable).

Access tokens of the last two come from the shared token cache, keyed per sender, so that many
workers sending at once refresh a sender's token once. Nothing secret reaches an error or a log.
"""

from __future__ import annotations

import base64
import email.policy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from google.auth.credentials import Credentials
from google.oauth2 import credentials as user_credentials

from bss.errors import GoogleAuthorizationError, GoogleError
from bss.gateway import oauth
from bss.gateway.credentials import decrypted, service_account_key
from bss.gateway.shared import cached_credentials, instance_gateway, shared_parts
from bss.gateway.smtp import send_smtp
from bss.gateway.tokens import CachedCredentials, fingerprint
from bss.models import Instance, MailSender, SenderMode
from bss.settings import Settings

# What a mailbox (or a delegated service account) needs for Gmail's SMTP server.
MAIL_SCOPE = "https://mail.google.com/"
# What an instance's user needs to send through the Gmail API.
GMAIL_SEND_SCOPE = "https://www.googleapis.com/auth/gmail.send"

HINTS = {
    SenderMode.GMAIL_API: "Re-authenticate the sender's instance (Authenticate Instance).",
    SenderMode.SMTP_XOAUTH2: "Click Authenticate mailbox on the Notifications page and allow "
    "https://mail.google.com/.",
    SenderMode.SERVICE_ACCOUNT: "In the Admin console (Security > API controls > Domain-wide "
    "delegation) give the service account's client id the scope https://mail.google.com/, and "
    "check that the sender's address is a user of that domain.",
}


# Headers are not folded below RFC 5322's limit: Python folds a long subject before its first
# word, and receivers then show it with a leading space.
POLICY = email.policy.default.clone(max_line_length=998)


@dataclass(frozen=True)
class MailSent:
    """Google took the message: its id (Gmail API) or the SMTP server's queue reply, until when
    the access token used works, and recipients the server refused (the others got it)."""

    provider_id: str | None
    access_token_expires_at: datetime | None = None
    refused: dict[str, str] = field(default_factory=dict)


def compose(*, from_address: str, to: list[str], subject: str, body: str) -> EmailMessage:
    """A plain-text notification, marked as sent by a machine (RFC 3834: no auto-replies)."""
    message = EmailMessage(policy=POLICY)
    message["From"] = from_address
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=from_address.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    if body.isascii():
        message.set_content(body)
    else:
        message.set_content(body, cte="quoted-printable")
    return message


def _not_ready(sender: MailSender, what: str) -> GoogleAuthorizationError:
    return GoogleAuthorizationError(
        f"Mail sender {sender.name!r} {what}.",
        reason="not_authenticated",
        hint=HINTS.get(SenderMode(sender.mode)),
    )


def sender_credentials(settings: Settings, sender: MailSender, instance: Instance | None) -> Any:
    """The credentials of an SMTP sender (its mailbox's consent, or a delegated service
    account), behind the token cache shared by every process."""
    parts = shared_parts(settings)
    vault = parts.vault
    inner: Credentials
    if sender.mode == SenderMode.SMTP_XOAUTH2:
        if not sender.refresh_token_enc:
            raise _not_ready(sender, "is not authenticated: its mailbox has not consented")
        if instance is None or not instance.client_secret_enc:
            raise _not_ready(sender, "has no instance whose OAuth client its mailbox uses")
        inner = user_credentials.Credentials(
            token=None,
            refresh_token=decrypted(vault, sender.refresh_token_enc),
            client_id=instance.client_id,
            client_secret=decrypted(vault, instance.client_secret_enc),
            token_uri=settings.google_token_uri,
            scopes=sender.granted_scopes.split() or [MAIL_SCOPE],
        )
    elif sender.mode == SenderMode.SERVICE_ACCOUNT:
        if not sender.service_account_key_enc or not sender.from_address:
            raise _not_ready(sender, "has no service-account key or address to send as")
        try:
            inner = service_account_key(
                vault, sender.service_account_key_enc, settings.google_token_uri, (MAIL_SCOPE,)
            ).with_subject(sender.from_address)
        except (ValueError, KeyError) as exc:
            raise GoogleAuthorizationError(
                f"The service-account key of mail sender {sender.name!r} is unusable ({exc}).",
                reason="invalid_key",
                hint="Upload the service account's JSON key again.",
            ) from None
    else:
        raise ValueError(f"mail sender mode {sender.mode!r} does not use SMTP")
    cache = parts.token_cache
    if cache is None or sender.id is None:
        return inner
    grant = fingerprint(
        sender.mode,
        sender.refresh_token_enc or sender.service_account_key_enc,
        sender.from_address,
    )
    return cache.wrap(inner, instance_id=f"sender:{sender.id}", grant=grant)


def _token(credentials: Any, sender: MailSender) -> tuple[str, datetime | None]:
    """A fresh access token (from the cache, or refreshed once for every process)."""
    try:
        oauth.refresh(credentials)
    except GoogleAuthorizationError as exc:
        _, _, google_said = exc.message.partition(": ")
        raise GoogleAuthorizationError(
            f"Google refused the credentials of mail sender {sender.name!r}: "
            f"{google_said or exc.message}",
            status=exc.status,
            reason=exc.reason,
            method=exc.method,
            hint=HINTS.get(SenderMode(sender.mode)),
        ) from None
    expiry = credentials.expiry
    return str(credentials.token), expiry.replace(tzinfo=UTC) if expiry else None


def sender_token_expiry(
    settings: Settings, *, sender: MailSender, instance: Instance | None
) -> datetime | None:
    """Obtain an access token for the sender now (what "Refresh now" does); until when it
    works. Raises a classified GoogleError when Google refuses."""
    if sender.mode == SenderMode.GMAIL_API:
        if instance is None:
            raise _not_ready(sender, "has no instance to send as")
        parts = shared_parts(settings)
        credentials = cached_credentials(
            instance, vault=parts.vault, settings=settings, cache=parts.token_cache
        )
        _ask_google(credentials)
        return oauth.refresh(credentials).expires_at
    credentials = sender_credentials(settings, sender, instance)
    _ask_google(credentials)
    return _token(credentials, sender)[1]


def _ask_google(credentials: Any) -> None:
    """Make the next refresh ask Google rather than take the token other processes cached."""
    if isinstance(credentials, CachedCredentials):
        credentials.forget()


def send_as_sender(
    settings: Settings,
    *,
    sender: MailSender,
    instance: Instance | None,
    to: list[str],
    subject: str,
    body: str,
) -> MailSent:
    """Send one plain-text mail through `sender`; raises a classified GoogleError."""
    message = compose(from_address=sender.from_address, to=to, subject=subject, body=body)
    if sender.mode == SenderMode.GMAIL_API:
        return _send_with_gmail_api(settings, sender, instance, message)
    credentials = sender_credentials(settings, sender, instance)
    token, expires_at = _token(credentials, sender)
    timeout = settings.google_http_timeout
    try:
        sent = send_smtp(
            settings, user=sender.from_address, token=token, message=message, timeout=timeout
        )
    except GoogleAuthorizationError as refused:
        # Google may end a token before its time (revoked, or clocks apart): a new one, once.
        try:
            token, expires_at = _token(credentials, sender)
        except GoogleAuthorizationError as dead:
            raise _both(refused, dead) from None
        sent = send_smtp(
            settings, user=sender.from_address, token=token, message=message, timeout=timeout
        )
    return MailSent(
        provider_id=sent.reply or None, access_token_expires_at=expires_at, refused=sent.refused
    )


def _both(refused: GoogleError, dead: GoogleError) -> GoogleAuthorizationError:
    """Gmail refused the token, and the token endpoint a new one: say both."""
    return GoogleAuthorizationError(
        f"{refused.message}; a new token was refused too: {dead.message}",
        status=refused.status,
        reason=dead.reason or refused.reason,
        method=refused.method,
        hint=dead.hint or refused.hint,
    )


def _send_with_gmail_api(
    settings: Settings, sender: MailSender, instance: Instance | None, message: EmailMessage
) -> MailSent:
    if instance is None:
        raise _not_ready(sender, "has no instance to send as")
    gateway = instance_gateway(settings, instance)
    raw = base64.urlsafe_b64encode(message.as_bytes()).decode()
    sent = gateway.call(
        "gmail.users.messages.send",
        lambda svc: svc.users().messages().send(userId="me", body={"raw": raw}),
    )
    return MailSent(provider_id=(sent or {}).get("id"))
