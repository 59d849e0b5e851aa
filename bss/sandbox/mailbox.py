"""Sent mail, however it was sent: the Gmail API and SMTP both record here, and
GET /_sandbox/mail (and the overview page) show it."""

from __future__ import annotations

import email.policy
import secrets
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses

from flask import Blueprint, Response, request

from bss.sandbox.clock import rfc3339
from bss.sandbox.errors import json_response
from bss.sandbox.model import public
from bss.sandbox.state import State, current_state

bp = Blueprint("mailbox", __name__, url_prefix="/_sandbox")

#: How a message reached Gmail: ``via`` on each record.
VIA_GMAIL_API = "gmail_api"
VIA_SMTP = "smtp"


def parse(data: bytes) -> EmailMessage:
    """An RFC 822 message as the email package's modern API reads it."""
    # policy.default makes EmailMessage objects (the typeshed stubs know it).
    return BytesParser(policy=email.policy.default).parsebytes(data)


def addresses(message: EmailMessage, field: str) -> list[str]:
    """The bare addresses of a header (To, Cc, From, ...), in order."""
    return [addr for _, addr in getaddresses(message.get_all(field, [])) if addr]


def _text(message: EmailMessage) -> tuple[str, str | None]:
    """The plain-text body (and the HTML body, if any) of a parsed message."""
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    text = plain.get_content() if plain is not None else ""
    return text, html.get_content() if html is not None else None


def send_as_addresses(account: dict) -> set[str]:
    """The addresses the account may put in From: its own and its aliases."""
    own = {account["primaryEmail"].lower()}
    own.update(str(e.get("address", "")).lower() for e in account.get("emails") or [])
    own.update(str(a).lower() for a in account.get("aliases") or [])
    return own - {""}


def record(
    state: State,
    *,
    account: dict,
    data: bytes,
    via: str,
    envelope: list[str] | None = None,
) -> dict:
    """Keep a message ``account`` sent; the caller holds the state lock.

    Gmail sends as the authenticated account: a From that is not the account or one of its
    aliases is replaced by the account's address (``rewritten_from`` keeps what it said).
    ``envelope`` are SMTP's RCPT TO addresses: those not in To or Cc were Bcc'd.
    """
    message = parse(data)
    to, cc = addresses(message, "To"), addresses(message, "Cc")
    if envelope is None:
        bcc = addresses(message, "Bcc")
        recipients = [*to, *cc, *bcc]
    else:
        shown = {a.lower() for a in (*to, *cc)}
        bcc = [a for a in envelope if a.lower() not in shown]
        recipients = list(envelope)
    senders = addresses(message, "From")
    claimed = senders[0] if senders else None
    allowed = claimed is not None and claimed.lower() in send_as_addresses(account)
    text, html = _text(message)
    message_id = secrets.token_hex(8)
    stored = {
        "id": message_id,
        "threadId": message_id,
        "labelIds": ["SENT"],
        "via": via,
        "sender": account["primaryEmail"],
        "from": claimed if allowed else account["primaryEmail"],
        "rewritten_from": None if allowed else claimed,
        "to": to,
        "cc": cc,
        "bcc": bcc,
        "recipients": recipients,
        "subject": str(message.get("Subject", "")),
        "body": text,
        "html": html,
        "sent_at": rfc3339(state.clock.now()),
        "size": len(data),
    }
    state.mail[message_id] = stored
    return stored


def _matches(message: dict, to: str | None, via: str | None, sender: str | None) -> bool:
    if to and to.lower() not in {a.lower() for a in message.get("recipients") or message["to"]}:
        return False
    if via and message.get("via", VIA_GMAIL_API) != via:
        return False
    return not sender or message["sender"] == sender.lower()


@bp.get("/mail")
def list_mail() -> Response:
    """Sent mail, oldest first; ``?to=`` (any recipient), ``?via=smtp|gmail_api``,
    ``?sender=`` (the account that sent it) filter."""
    to, via, sender = (request.args.get(k) for k in ("to", "via", "sender"))
    state = current_state()
    with state.lock:
        messages = [public(m) for m in state.mail.values() if _matches(m, to, via, sender)]
    return json_response({"messages": messages})
