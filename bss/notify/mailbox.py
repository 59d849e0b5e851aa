"""A sender's grant. Authenticate mailbox: an SMTP sender's mailbox consents to
`https://mail.google.com/` through the OAuth client of one of the distributor's instances, in the
same pop-up and through the same callback as Authenticate Instance (the instance's registered
redirect URI is reused). Refresh now: a token obtained on demand, which says until when it works
(or, for a service account, that its delegation does)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from bss.accounts import normalize_email
from bss.crypto import Vault
from bss.errors import GoogleAuthorizationError, OAuthFlowError, ValidationFailed
from bss.gateway import (
    MAIL_SCOPE,
    ConsumedState,
    check_answer,
    consented_identity,
    exchange,
    oauth,
    peek_state,
    sender_token_expiry,
    spend_state,
    start_consent,
)
from bss.models import (
    Instance,
    InstanceMode,
    MailSender,
    OAuthPurpose,
    SenderMode,
    SenderStatus,
    User,
    utcnow,
)
from bss.notify.alerts import resolve_alert
from bss.notify.conditions import sender_token_expiring_key, sender_works
from bss.notify.sender_fields import MAX_ERROR_CHARS
from bss.settings import Settings

# Who consented comes from the id token, hence openid + email beside Gmail's SMTP scope.
MAILBOX_SCOPES = [MAIL_SCOPE, *oauth.OPENID_SCOPES]
BUTTON = "Authenticate mailbox"


@dataclass
class MailboxOutcome:
    """How a mailbox's consent ended, for the page that reports it."""

    ok: bool
    message: str
    reason: str = "ok"
    sender_id: int | None = None
    distributor_id: int | None = None
    display: str = "popup"


def _client_of(session: Session, sender: MailSender) -> Instance:
    """The instance whose OAuth client the mailbox consents to, or why it cannot."""
    if sender.mode != SenderMode.SMTP_XOAUTH2:
        raise OAuthFlowError(
            "Only an SMTP sender's mailbox is authenticated this way: a Gmail API sender uses "
            "its instance's grant, a service account its delegation.",
            reason="wrong_mode",
        )
    instance = session.get(Instance, sender.instance_id) if sender.instance_id else None
    if (
        instance is None
        or instance.mode != InstanceMode.OAUTH
        or not instance.client_id
        or not instance.client_secret_enc
    ):
        raise OAuthFlowError(
            "The sender's instance has no OAuth web client (Client ID and Client Secret): "
            "choose an instance that has one.",
            reason="not_configured",
        )
    return instance


def start_mailbox_consent(
    session: Session,
    *,
    settings: Settings,
    vault: Vault,
    sender: MailSender,
    user: User,
    browser_id: str,
    request_base: str | None = None,
    display: str = "popup",
) -> oauth.AuthorizationRequest:
    """Google's authorization URL for the sender's mailbox, and its state (saved); the caller
    commits. Google's account chooser starts at the sender's address when it has one."""
    instance = _client_of(session, sender)
    return start_consent(
        session,
        settings=settings,
        vault=vault,
        purpose=OAuthPurpose.MAIL_SENDER,
        client_id=instance.client_id,
        client_secret=vault.decrypt(instance.client_secret_enc or ""),
        scopes=MAILBOX_SCOPES,
        login_hint=sender.from_address or None,
        user_id=user.id,
        browser_id=browser_id,
        request_base=request_base,
        display=display,
        sender_id=sender.id,
    )


def finish_mailbox_consent(
    session: Session,
    *,
    settings: Settings,
    vault: Vault,
    user: User | None,
    browser_id: str | None,
    params: Mapping[str, str],
    started_senders: Mapping[str, int] | None = None,
) -> MailboxOutcome:
    """Check and complete the callback of a mailbox's consent. `started_senders` maps state
    digests to the sender this browser started them for. Every failure returns an outcome with
    a specific message and stores nothing."""
    row = peek_state(session, params.get("state"))
    outcome = MailboxOutcome(
        ok=False,
        message="",
        sender_id=row.sender_id if row else None,
        display=row.display if row else "popup",
    )
    sender = session.get(MailSender, row.sender_id) if row and row.sender_id else None
    outcome.distributor_id = sender.distributor_id if sender else None
    try:
        consumed = spend_state(
            session,
            vault=vault,
            params=params,
            purpose=OAuthPurpose.MAIL_SENDER,
            user_id=user.id if user else None,
            browser_id=browser_id,
            button=BUTTON,
        )
        expected = (started_senders or {}).get(consumed.row.state_hash)
        instance = _client_of(session, sender) if sender is not None else None
        if (
            sender is None
            or instance is None
            or expected != sender.id
            or instance.client_id != consumed.row.client_id
        ):
            raise OAuthFlowError(
                "This authorization was started for another sender (or before the sender's "
                f"instance was changed). Nothing was changed: click {BUTTON} again on the "
                "sender you want to connect.",
                reason="state_other_sender",
            )
        check_answer(params, BUTTON)
        _complete(session, settings, vault, sender, instance, consumed, params)
    except OAuthFlowError as exc:
        session.rollback()
        outcome.reason, outcome.message = exc.reason, exc.message
        return outcome
    outcome.ok, outcome.reason = True, "ok"
    outcome.message = (
        f"The mailbox {sender.from_address} is authenticated: sender {sender.name!r} sends as it."
    )
    return outcome


def _complete(
    session: Session,
    settings: Settings,
    vault: Vault,
    sender: MailSender,
    instance: Instance,
    consumed: ConsumedState,
    params: Mapping[str, str],
) -> None:
    grant = exchange(
        settings=settings,
        consumed=consumed,
        client_id=instance.client_id,
        client_secret=vault.decrypt(instance.client_secret_enc or ""),
        scopes=MAILBOX_SCOPES,
        params=params,
        button=BUTTON,
    )
    if MAIL_SCOPE not in grant.granted_scopes:
        raise OAuthFlowError(
            f"Google did not grant {MAIL_SCOPE} (read, compose, send and delete all your e-mail "
            "from Gmail), which sending over SMTP needs. Nothing was stored: click "
            f"{BUTTON} again and tick that permission on Google's consent page.",
            reason="scopes_missing",
        )
    who = consented_identity(
        settings=settings,
        grant=grant,
        client_id=instance.client_id,
        button=BUTTON,
        what="the mailbox",
    )
    try:
        mailbox = normalize_email(who)
    except ValidationFailed:
        raise OAuthFlowError(
            f"Google's answer names no e-mail address for the account that consented ({who}). "
            "Nothing was stored: keep the e-mail permission ticked.",
            reason="no_email",
        ) from None
    if sender.from_address and mailbox != sender.from_address:
        raise OAuthFlowError(
            f"The account that consented is {mailbox}, but sender {sender.name!r} sends as "
            f"{sender.from_address}. Nothing was stored: click {BUTTON} again and choose "
            f"{sender.from_address} on Google's page (or add a sender for {mailbox}).",
            reason="other_mailbox",
        )
    now = utcnow()
    sender.from_address = mailbox
    sender.refresh_token_enc = vault.encrypt(grant.refresh_token or "")
    sender.granted_scopes = " ".join(s for s in grant.granted_scopes if s == MAIL_SCOPE)
    sender.authenticated_at = sender.updated_at = now
    sender.access_token_expires_at = grant.expires_at
    sender.refresh_token_expires_at = grant.refresh_token_expires_at
    session.add(sender)
    sender_works(session, sender)
    # A new consent: the old grant's end is no longer near
    resolve_alert(session, sender_token_expiring_key(sender.id))
    session.commit()


def refresh_sender(session: Session, *, settings: Settings, sender: MailSender) -> datetime | None:
    """Obtain an access token for the sender now ("Refresh now", or for a service account
    "Verify delegation"): a sender Google accepts is OK until the time returned; one Google
    refuses is failing, with Google's answer kept. Raises the GoogleError; the caller commits."""
    instance = session.get(Instance, sender.instance_id) if sender.instance_id else None
    now = utcnow()
    try:
        expires_at = sender_token_expiry(settings, sender=sender, instance=instance)
    except GoogleAuthorizationError as exc:
        sender.status = SenderStatus.FAILING
        sender.last_error = oauth.describe(exc)[:MAX_ERROR_CHARS]
        sender.updated_at = now
        session.add(sender)
        raise
    sender.access_token_expires_at = expires_at
    if sender.status != SenderStatus.OK:
        sender.authenticated_at = sender.authenticated_at or now
    if sender.mode == SenderMode.SERVICE_ACCOUNT:
        sender.granted_scopes = MAIL_SCOPE
    sender_works(session, sender)
    return expires_at
