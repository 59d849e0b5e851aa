"""Gmail's SMTP submission server with an OAuth access token (AUTH XOAUTH2), through smtplib.

Google ended passwords for SMTP ("less secure apps"): a client says EHLO, STARTTLS, EHLO again,
then `AUTH XOAUTH2` with base64("user=" + address + "\\x01auth=Bearer " + token + "\\x01\\x01")
(https://developers.google.com/gmail/imap/xoauth2-protocol). A token Google does not accept is
answered with a 334 challenge holding a JSON status (401: invalid or expired; 400: e.g. the
https://mail.google.com/ scope missing); the client answers with an empty line and Google says
`535 5.7.8 Username and Password not accepted`. Every failure is classified here, once.
"""

from __future__ import annotations

import binascii
import json
import smtplib
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from bss.errors import (
    GoogleAuthorizationError,
    GoogleError,
    PermanentGoogleError,
    TransientGoogleError,
)
from bss.settings import Settings

# How much of the server's answer an error keeps (Gmail's are one or two lines).
MAX_REPLY_CHARS = 300


@dataclass(frozen=True)
class SmtpSent:
    """What the server said to the message: its queue reply, and recipients it refused."""

    reply: str
    refused: dict[str, str]


class _SMTP(smtplib.SMTP):
    """smtplib's client, keeping the server's answer to DATA (Gmail names the queued message
    there: `250 2.0.0 OK 1700000000 abc.123 - gsmtp`), which `send_message` drops."""

    data_reply: str = ""

    def data(self, msg: Any) -> tuple[int, bytes]:
        code, reply = super().data(msg)
        self.data_reply = _text(reply)
        return code, reply


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())[:MAX_REPLY_CHARS]


def tls_context(settings: Settings) -> ssl.SSLContext:
    """The system's trust store, plus GOOGLE_SMTP_CA_FILE when set; the host name is checked."""
    context = ssl.create_default_context()
    if settings.google_smtp_ca_file:
        context.load_verify_locations(cafile=settings.google_smtp_ca_file)
    return context


def xoauth2(user: str, token: str) -> str:
    """The XOAUTH2 initial response, before base64 (smtplib encodes it)."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def _challenge_status(challenges: list[bytes]) -> str | None:
    """The `status` of Google's XOAUTH2 error challenge (base64 JSON, decoded by smtplib)."""
    for raw in challenges:
        try:
            status = json.loads(raw.decode("utf-8", "replace")).get("status")
        except (ValueError, AttributeError, binascii.Error):
            continue
        if status:
            return str(status)
    return None


def send_smtp(
    settings: Settings, *, user: str, token: str, message: EmailMessage, timeout: float
) -> SmtpSent:
    """Send `message` as `user` with an access token; raises a classified GoogleError."""
    host, port = settings.google_smtp_host, settings.google_smtp_port
    where = f"{host}:{port}"
    challenges: list[bytes] = []

    def answer(challenge: bytes | None = None) -> str:
        # smtplib asks for the initial response with no challenge, and for an answer to each
        # 334 challenge: Google's is an error report, answered with an empty line.
        if challenge is None:
            return xoauth2(user, token)
        challenges.append(challenge)
        return ""

    try:
        context = tls_context(settings)
    except (OSError, ssl.SSLError) as exc:
        raise PermanentGoogleError(
            f"GOOGLE_SMTP_CA_FILE {settings.google_smtp_ca_file} cannot be read as PEM "
            f"certificates ({type(exc).__name__}).",
            method="smtp.starttls",
        ) from None
    try:
        with _SMTP(host, port, timeout=timeout) as smtp:
            smtp.ehlo()
            smtp.starttls(context=context)
            smtp.ehlo()
            smtp.auth("XOAUTH2", answer, initial_response_ok=True)
            refused = smtp.send_message(message)
            return SmtpSent(
                reply=smtp.data_reply,
                refused={addr: f"{code} {_text(msg)}" for addr, (code, msg) in refused.items()},
            )
    except smtplib.SMTPAuthenticationError as exc:
        raise _auth_refused(exc, _challenge_status(challenges), where) from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise _recipients_refused(exc.recipients.items(), where) from None
    except smtplib.SMTPResponseException as exc:
        raise by_reply(exc.smtp_code, _text(exc.smtp_error), where) from None
    except smtplib.SMTPNotSupportedError:
        raise PermanentGoogleError(
            f"The SMTP server {where} does not offer STARTTLS: mail is never sent unencrypted.",
            method="smtp.starttls",
            hint="Check GOOGLE_SMTP_HOST and GOOGLE_SMTP_PORT (Gmail: smtp.gmail.com:587).",
        ) from None
    except ssl.SSLCertVerificationError as exc:
        raise PermanentGoogleError(
            f"The SMTP server {where} presented a certificate that is not trusted "
            f"({exc.verify_message}).",
            method="smtp.starttls",
            hint="Trust its certificate authority with GOOGLE_SMTP_CA_FILE, or check the host.",
        ) from None
    except (smtplib.SMTPException, OSError) as exc:  # timeouts, refused or dropped connections
        raise TransientGoogleError(
            f"Could not talk to the SMTP server {where} ({_network_reason(exc)}).",
            method="smtp",
        ) from None


def _network_reason(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    return type(exc).__name__


def _auth_refused(
    exc: smtplib.SMTPAuthenticationError, status: str | None, where: str
) -> GoogleError:
    """Google's refusal of AUTH: 535 (after the challenge) is a dead or wrong token; a 4xx
    (`454 4.7.0 Too many login attempts`) passes."""
    reply = f"{exc.smtp_code} {_text(exc.smtp_error)}"
    if 400 <= exc.smtp_code < 500:
        return TransientGoogleError(
            f"The SMTP server {where} refused to sign in for now: {reply}",
            status=exc.smtp_code,
            method="smtp.auth",
        )
    said = f" (XOAUTH2 status {status})" if status else ""
    return GoogleAuthorizationError(
        f"Gmail refused the sender's access token: {reply}{said}",
        status=exc.smtp_code,
        reason=f"xoauth2_{status}" if status else "auth_refused",
        method="smtp.auth",
        hint=(
            "Authenticate the mailbox again (its consent needs https://mail.google.com/), or for "
            "a service account check its domain-wide delegation of that scope."
        ),
    )


def _recipients_refused(
    refused: Iterable[tuple[str, tuple[int, bytes]]], where: str
) -> GoogleError:
    answers = [(addr, code, _text(msg)) for addr, (code, msg) in refused]
    said = "; ".join(f"{addr}: {code} {msg}" for addr, code, msg in answers)
    if answers and all(400 <= code < 500 for _, code, _ in answers):
        return TransientGoogleError(
            f"The SMTP server {where} deferred every recipient: {said}", method="smtp.rcpt"
        )
    return PermanentGoogleError(
        f"The SMTP server {where} refused every recipient: {said}",
        method="smtp.rcpt",
        hint="Check the recipients' addresses on the Notifications page.",
    )


def by_reply(code: int, reply: str, where: str) -> GoogleError:
    """An SMTP reply code's meaning: 4xx passes (retry later), 5xx stays (do not retry)."""
    message = f"The SMTP server {where} answered {code} {reply}"
    if 400 <= code < 500 or code == -1:
        return TransientGoogleError(message, status=code, method="smtp")
    return PermanentGoogleError(message, status=code, method="smtp")
