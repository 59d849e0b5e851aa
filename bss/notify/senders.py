"""The Google accounts notifications are sent through: a distributor's senders, or the platform's
(`distributor_id` None, operators only), created and changed by the rules of `sender_fields`,
one default per owner, and removal. A sender holds no secret in the clear: the mailbox's refresh
token and the service account's key are encrypted with the vault."""

from __future__ import annotations

import json

from sqlalchemy import update
from sqlmodel import Session, col, select

from bss.accounts import normalize_email
from bss.crypto import Vault
from bss.errors import GoogleError, InvalidState
from bss.gateway import (
    GMAIL_SEND_SCOPE,
    KeySummary,
    oauth,
    summarize_key,
)
from bss.models import (
    Instance,
    MailMessage,
    MailSender,
    OAuthState,
    SenderMode,
    SenderStatus,
    utcnow,
)
from bss.notify.alerts import resolve_alert
from bss.notify.conditions import sender_failing_key, sender_token_expiring_key
from bss.notify.sender_fields import MODE_NAMES, read_key, refuse, sender_problems
from bss.settings import Settings


def create_sender(
    session: Session,
    *,
    vault: Vault,
    distributor_id: int | None,
    name: str,
    mode: str,
    from_address: str = "",
    instance_id: int | None = None,
    key_file: bytes | None = None,
) -> MailSender:
    """A new sender, refused (ValidationFailed, every bad field listed) unless its fields follow
    the mode's rules. The owner's first sender becomes its default. The caller commits."""
    name, from_address = name.strip(), from_address.strip()
    instance = session.get(Instance, instance_id) if instance_id else None
    key, key_problems = read_key(key_file)
    refuse(
        key_problems
        + sender_problems(
            session,
            distributor_id=distributor_id,
            name=name,
            mode=mode,
            from_address=from_address,
            instance=instance,
            has_key=bool(key_file),
        )
    )
    sender = MailSender(
        distributor_id=distributor_id,
        name=name,
        mode=mode,
        from_address=normalize_email(from_address) if from_address else "",
        instance_id=instance.id if instance and mode != SenderMode.SERVICE_ACCOUNT else None,
        is_default=default_sender(session, distributor_id) is None,
    )
    if mode == SenderMode.GMAIL_API and instance is not None:
        # The instance's grant is the sender's: it works as soon as the instance does.
        sender.from_address = (instance.authenticated_as or "").lower()
        sender.granted_scopes = GMAIL_SEND_SCOPE
        sender.status = SenderStatus.OK
        sender.authenticated_at = utcnow()
    if key is not None:
        sender.service_account_key_enc = vault.encrypt(json.dumps(key))
    session.add(sender)
    session.flush()
    return sender


def update_sender(
    session: Session,
    sender: MailSender,
    *,
    vault: Vault,
    name: str | None = None,
    from_address: str | None = None,
    instance_id: int | None = None,
    key_file: bytes | None = None,
) -> list[str]:
    """Change what is given (None keeps a field); the mode stays. A change that makes the
    stored grant mean something else (another mailbox, client, key or impersonated user) drops
    it: the sender must be authenticated or verified again. Returns notes; the caller commits."""
    new_name = sender.name if name is None else name.strip()
    new_from = sender.from_address if from_address is None else from_address.strip()
    new_instance_id = sender.instance_id if instance_id is None else instance_id
    instance = session.get(Instance, new_instance_id) if new_instance_id else None
    key, key_problems = read_key(key_file)
    refuse(
        key_problems
        + sender_problems(
            session,
            distributor_id=sender.distributor_id,
            name=new_name,
            mode=sender.mode,
            from_address=new_from,
            instance=instance,
            has_key=bool(key_file) or bool(sender.service_account_key_enc),
            sender_id=sender.id,
        )
    )
    new_from = normalize_email(new_from) if new_from else ""
    if sender.mode == SenderMode.GMAIL_API and instance is not None:
        new_from = (instance.authenticated_as or "").lower()
    notes = []
    if new_name != sender.name:
        notes.append(f"Renamed to {new_name!r}.")
    changed_grant = (
        new_from != sender.from_address or new_instance_id != sender.instance_id or key is not None
    )
    sender.name, sender.from_address = new_name, new_from
    if sender.mode != SenderMode.SERVICE_ACCOUNT:
        sender.instance_id = new_instance_id
    if key is not None:
        sender.service_account_key_enc = vault.encrypt(json.dumps(key))
        notes.append(
            f"Key {key.get('private_key_id') or '(no id)'} of {key['client_email']} is stored."
        )
    if changed_grant and sender.mode != SenderMode.GMAIL_API:
        _forget_grant(sender)
        notes.append(
            "Authenticate the mailbox again."
            if sender.mode == SenderMode.SMTP_XOAUTH2
            else "Verify the delegation again."
        )
    sender.updated_at = utcnow()
    session.add(sender)
    return notes


def _forget_grant(sender: MailSender) -> None:
    sender.refresh_token_enc = None
    sender.granted_scopes = ""
    sender.status = SenderStatus.NOT_AUTHENTICATED
    sender.authenticated_at = None
    sender.access_token_expires_at = None
    sender.refresh_token_expires_at = None


def owners_senders(session: Session, distributor_id: int | None) -> list[MailSender]:
    """The senders of a distributor (or of the platform, for None): the default first."""
    query = select(MailSender).where(
        col(MailSender.distributor_id).is_(None)
        if distributor_id is None
        else col(MailSender.distributor_id) == distributor_id
    )
    found = list(session.exec(query).all())
    return sorted(found, key=lambda s: (not s.is_default, s.name))


def default_sender(session: Session, distributor_id: int | None) -> MailSender | None:
    """The owner's default sender, if it has one."""
    return next((s for s in owners_senders(session, distributor_id) if s.is_default), None)


def make_default(session: Session, sender: MailSender) -> None:
    """`sender` becomes its owner's one default; the caller commits."""
    for other in owners_senders(session, sender.distributor_id):
        if other.id != sender.id and other.is_default:
            other.is_default = False
            session.add(other)
    sender.is_default = True
    sender.updated_at = utcnow()
    session.add(sender)


def delete_sender(session: Session, *, settings: Settings, vault: Vault, sender: MailSender) -> str:
    """Remove a sender: its mailbox's grant is revoked at Google, its alerts close, the mail it
    sent stays listed (without it), and another sender of the owner becomes the default. The
    caller commits."""
    note = ""
    if sender.mode == SenderMode.SMTP_XOAUTH2 and sender.refresh_token_enc:
        try:
            revoked = oauth.revoke_token(
                settings=settings, token=vault.decrypt(sender.refresh_token_enc)
            )
            note = " Google revoked the mailbox's access." if revoked else ""
        except GoogleError as exc:
            note = (
                f" Google could not be reached to revoke the mailbox's access ({exc.message}); "
                "revoke it at https://myaccount.google.com/permissions to be sure."
            )
    elif sender.mode == SenderMode.SERVICE_ACCOUNT:
        note = (
            " Its key is deleted here; delete it in Google Cloud console too if nothing else "
            "uses it."
        )
    session.exec(
        update(MailMessage).where(col(MailMessage.sender_id) == sender.id).values(sender_id=None)
    )
    session.exec(
        update(OAuthState).where(col(OAuthState.sender_id) == sender.id).values(sender_id=None)
    )
    # Nothing more to say about a sender that is gone
    resolve_alert(session, sender_failing_key(sender.id))
    resolve_alert(session, sender_token_expiring_key(sender.id))
    was_default = sender.is_default
    session.delete(sender)
    session.flush()
    if was_default:
        heir = next(iter(owners_senders(session, sender.distributor_id)), None)
        if heir is not None:
            make_default(session, heir)
            note += f" {heir.name!r} is the default sender now."
    return f"Sender {sender.name!r} is removed.{note}"


def sender_key(vault: Vault, sender: MailSender) -> KeySummary | None:
    """The service account key's public identifiers, or None without a key."""
    if not sender.service_account_key_enc:
        return None
    return summarize_key(json.loads(vault.decrypt(sender.service_account_key_enc)))


def require_mode(sender: MailSender, mode: str, action: str) -> None:
    """Refuse `action` on a sender of another mode."""
    if sender.mode != mode:
        raise InvalidState(
            f"{action} is only for {MODE_NAMES[SenderMode(mode)]} senders; {sender.name!r} is a "
            f"{MODE_NAMES[SenderMode(sender.mode)]} sender."
        )
