"""What a mail sender's fields must be, per mode, in words for the person who filled them in:
a slug for a name unique per owner, a real address, and for each mode what it sends with (an
authenticated instance granted gmail.send, an instance's OAuth client, a service-account key
checked as an instance's is, and the address it impersonates)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from bss.accounts import name_problem, normalize_email
from bss.errors import ValidationFailed
from bss.gateway import GMAIL_SEND_SCOPE, parse_key
from bss.models import Instance, InstanceMode, InstanceStatus, MailSender, SenderMode, SenderStatus

MODE_LABELS = {
    SenderMode.GMAIL_API: "Gmail API, as an authenticated instance's user",
    SenderMode.SMTP_XOAUTH2: "SMTP with OAuth (XOAUTH2), a mailbox that consents on its own",
    SenderMode.SERVICE_ACCOUNT: "Service account with domain-wide delegation",
}
# Short names, for sentences
MODE_NAMES = {
    SenderMode.GMAIL_API: "Gmail API",
    SenderMode.SMTP_XOAUTH2: "SMTP (XOAUTH2)",
    SenderMode.SERVICE_ACCOUNT: "service account",
}
STATUS_LABELS = {
    SenderStatus.NOT_AUTHENTICATED: "Not authenticated",
    SenderStatus.OK: "OK",
    SenderStatus.FAILING: "Failing",
}
# How much of Google's answer a sender keeps (MailSender.last_error holds 500)
MAX_ERROR_CHARS = 500
SENDER_FIELD_LABELS = {
    "name": "Name",
    "mode": "Mode",
    "from_address": "From address",
    "instance_id": "Instance",
    "key_file": "Service-account JSON key",
}


def sender_problems(
    session: Session,
    *,
    distributor_id: int | None,
    name: str,
    mode: str,
    from_address: str,
    instance: Instance | None,
    has_key: bool,
    sender_id: int | None = None,
) -> list[dict[str, str]]:
    """Every field of a sender that cannot be saved as given, with why (empty: it can)."""
    problems = []
    if problem := name_problem(name):
        problems.append({"field": "name", "problem": problem})
    elif _name_taken(session, distributor_id, name, sender_id):
        owner = "the platform" if distributor_id is None else "this distributor"
        problems.append(
            {
                "field": "name",
                "problem": f"{owner} has a sender named {name!r} already; choose another name.",
            }
        )
    if from_address and (problem := _address_problem(from_address)):
        problems.append({"field": "from_address", "problem": problem})
    if mode not in tuple(SenderMode):
        modes = ", ".join(repr(m.value) for m in SenderMode)
        problems.append(
            {"field": "mode", "problem": f"{mode!r} is not a mode: use one of {modes}."}
        )
    elif mode in (SenderMode.GMAIL_API, SenderMode.SMTP_XOAUTH2):
        problems += _instance_problems(distributor_id, mode, from_address, instance)
    elif not has_key:
        problems.append({"field": "key_file", "problem": "upload the service account's JSON key."})
    if mode == SenderMode.SERVICE_ACCOUNT and not from_address:
        problems.append(
            {
                "field": "from_address",
                "problem": "required: the address the service account sends as (it impersonates "
                "that user through domain-wide delegation).",
            }
        )
    return problems


def _address_problem(address: str) -> str | None:
    try:
        normalize_email(address)
    except ValidationFailed as exc:
        return f"{address!r} is not an e-mail address ({exc.details[0]['problem']})."
    return None


def _name_taken(session: Session, distributor_id: int | None, name: str, sender_id: int | None):
    query = select(MailSender).where(
        col(MailSender.distributor_id).is_(None)
        if distributor_id is None
        else col(MailSender.distributor_id) == distributor_id,
        MailSender.name == name,
    )
    found = session.exec(query).first()
    return found is not None and found.id != sender_id


def _instance_problems(
    distributor_id: int | None, mode: str, from_address: str, instance: Instance | None
) -> list[dict[str, str]]:
    # The platform's senders may use any distributor's instance (operators often keep a
    # distributor of their own); a distributor's, only its own.
    if instance is None or (
        distributor_id is not None and instance.distributor_id != distributor_id
    ):
        return [{"field": "instance_id", "problem": "choose one of this distributor's instances."}]
    name = instance.name
    if mode == SenderMode.GMAIL_API:
        if instance.status != InstanceStatus.AUTHENTICATED or not instance.authenticated_as:
            return [
                {
                    "field": "instance_id",
                    "problem": f"instance {name!r} is not authenticated: authenticate it first "
                    "(the Gmail API sends as the user who authenticated it).",
                }
            ]
        if GMAIL_SEND_SCOPE not in instance.granted_scopes.split():
            return [
                {
                    "field": "instance_id",
                    "problem": f"instance {name!r} was not granted {GMAIL_SEND_SCOPE}: "
                    "re-authenticate it and tick the Gmail permission.",
                }
            ]
        if from_address and normalize_email(from_address) != instance.authenticated_as.lower():
            return [
                {
                    "field": "from_address",
                    "problem": f"the Gmail API sends as {instance.authenticated_as}, who "
                    f"authenticated instance {name!r}; leave the address empty or use that one.",
                }
            ]
        return []
    if (
        instance.mode != InstanceMode.OAUTH
        or not instance.client_id
        or not instance.client_secret_enc
    ):
        return [
            {
                "field": "instance_id",
                "problem": f"instance {name!r} has no OAuth web client (Client ID and Client "
                "Secret): the mailbox consents through an instance's OAuth client.",
            }
        ]
    return []


def refuse(problems: list[dict[str, str]]) -> None:
    if problems:
        listed = " ".join(
            f"{SENDER_FIELD_LABELS.get(p['field'], p['field'])}: {p['problem']}" for p in problems
        )
        raise ValidationFailed(f"The sender was not saved. {listed}", details=problems)


def read_key(key_file: bytes | None) -> tuple[dict[str, Any] | None, list[dict[str, str]]]:
    """The uploaded key, checked as an instance's key is, or the problem with it."""
    if not key_file:
        return None, []
    try:
        return parse_key(key_file), []
    except ValidationFailed as exc:
        return None, [{"field": "key_file", "problem": exc.message}]
