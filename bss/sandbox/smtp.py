"""Gmail's SMTP submission server (smtp.gmail.com:587), on aiosmtpd, in a thread of the sandbox.

The conversation as Gmail holds it: EHLO offers STARTTLS and no AUTH until the connection is
encrypted (before that, anything but EHLO, NOOP, STARTTLS and QUIT is ``530 5.7.0 Must issue a
STARTTLS command first``); then AUTH LOGIN PLAIN XOAUTH2, and MAIL before AUTH is ``530 5.7.0
Authentication Required``. XOAUTH2 takes an access token the sandbox issued: live on the sandbox
clock, not revoked, holding ``https://mail.google.com/``, of the account named by ``user=``
(a service account's delegated token is its subject's). Otherwise Google's error challenge (334
with base64 JSON: status 401 for an unknown, expired or revoked token, 400 for the rest) and,
after the client's empty answer, ``535 5.7.8 Username and Password not accepted``. Passwords
(PLAIN, LOGIN) get that 535 at once. DATA keeps the message in bss.sandbox.mailbox as the
account sent it, like a Gmail API send. Fault rules for ``smtp.connect``, ``smtp.auth``,
``smtp.mail`` and ``smtp.data`` answer an SMTP code instead (default 421, which hangs up).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any, NoReturn, cast

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, Session

from bss.sandbox import faults, mailbox, tokens
from bss.sandbox.clock import rfc3339
from bss.sandbox.state import State

log = logging.getLogger("bss.sandbox.smtp")
# aiosmtpd logs every connection, and a deprecation warning on each successful AUTH.
logging.getLogger("mail.log").setLevel(logging.ERROR)

#: The largest message Gmail's SMTP takes (its EHLO's SIZE).
MAX_MESSAGE_BYTES = 35882577
#: Replies in Gmail's words; {tag} is the session's "<id> - gsmtp".
AUTH_REQUIRED = (
    "530 5.7.0 Authentication Required. Learn more at "
    "https://support.google.com/mail/?p=WantAuthError {tag}"
)
BAD_CREDENTIALS = (
    "535 5.7.8 Username and Password not accepted. For more information, go to "
    "https://support.google.com/mail/?p=BadCredentials {tag}"
)
#: aiosmtpd's own replies that Gmail words differently.
GMAIL_WORDS = {
    "530 Must issue a STARTTLS command first": (
        "530 5.7.0 Must issue a STARTTLS command first. {tag}"
    ),
    "530 5.7.0 Authentication required": AUTH_REQUIRED,
    "220 Ready to start TLS": "220 2.0.0 Ready to start TLS",
    "503 Error: send EHLO first": "503 5.5.1 EHLO/HELO first. {tag}",
    "503 Error: send HELO first": "503 5.5.1 EHLO/HELO first. {tag}",
    "503 Error: need MAIL command": "503 5.5.1 MAIL first. {tag}",
    "503 Error: need RCPT command": "503 5.5.1 RCPT first. {tag}",
}
#: Gmail's text for the codes a fault rule is likely to give (its "SMTP errors and codes").
FAULT_TEXT = {
    421: "4.7.0 Try again later, closing connection.",
    451: "4.3.0 Mail server temporarily rejected message.",
    454: "4.7.0 Too many login attempts, please try again later.",
}


@dataclass(frozen=True)
class Grant:
    """Who an SMTP session authenticated as (kept on the aiosmtpd session)."""

    user: str
    client_id: str
    project: str | None


class GmailSMTP(SMTP):
    """aiosmtpd's protocol, one per connection, speaking in Gmail's words."""

    AuthLoginUsernameChallenge = "Username:"
    AuthLoginPasswordChallenge = "Password:"

    def __init__(self, handler: Gmail, **kwargs: Any) -> None:
        self.tag = f"{secrets.token_hex(10)} - gsmtp"
        self.greeted = False
        super().__init__(handler, ident=f"ESMTP {self.tag}", **kwargs)

    async def push(self, status: str | bytes) -> None:
        text = status.decode() if isinstance(status, bytes) else status
        if not self.greeted:  # the first thing said is the 220 greeting
            self.greeted = True
            reply, _ = await self.event_handler.faulted(self, "smtp.connect", None)
            if reply is not None:
                text = reply
        if text in GMAIL_WORDS:
            text = GMAIL_WORDS[text].format(tag=self.tag)
        await super().push(text)
        if text.startswith("421"):
            await self.hang_up()

    async def hang_up(self, reply: str | None = None) -> NoReturn:
        """Close the connection (after ``reply``) and stop reading from it."""
        if reply is not None:
            await super().push(reply)
        if self.transport is not None:
            self.transport.close()
        raise asyncio.CancelledError  # ends aiosmtpd's command loop for this connection


def refuse_password(
    server: GmailSMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    """PLAIN and LOGIN: Google takes no passwords here (no "less secure apps", no app passwords
    in a Workspace that turned them off), and says so in its usual words."""
    return AuthResult(success=False, handled=False, message=BAD_CREDENTIALS.format(tag=server.tag))


def parse_xoauth2(blob: bytes) -> tuple[str, str] | None:
    """(user, token) of ``user=...^Aauth=Bearer ...^A^A``, or None when it is not that."""
    try:
        fields = dict(
            part.split("=", 1) for part in blob.decode().split("\x01") if part and "=" in part
        )
    except UnicodeDecodeError:
        return None
    user, auth = fields.get("user", ""), fields.get("auth", "")
    if not user or auth[:7].lower() != "bearer " or not auth[7:].strip():
        return None
    return user, auth[7:].strip()


def check_token(state: State, user: str, token: str) -> tuple[dict | None, str, str]:
    """(the token's record, "", "") when Gmail takes it for ``user``, else (None, the error
    challenge's status, why); the caller holds the state lock."""
    record = tokens.bearer(state, token)
    if record is None:
        return None, "401", "token unknown, expired or revoked"
    account = state.user(record["user"])
    if account is None:  # a service account's own token: it has no mailbox
        return None, "400", f"{record['user']} has no mailbox"
    if tokens.GMAIL_FULL_SCOPE not in record["scopes"]:
        return None, "400", f"token lacks {tokens.GMAIL_FULL_SCOPE}"
    if user.lower() != account["primaryEmail"]:
        return None, "400", f"user={user} is not the token's account {account['primaryEmail']}"
    return record, "", ""


def fault_reply(rule: dict, tag: str) -> str:
    """An error rule's reply: its code, its message or Gmail's text for the code, the tag."""
    status = rule["status"]
    text = rule["message"] or FAULT_TEXT.get(status)
    if not text:
        text = "4.3.0 Temporary System Problem. Try again later."
        if status >= 500:
            text = "5.7.1 Rejected (a sandbox fault rule)."
    return f"{status} {text} {tag}"


class Gmail:
    """The aiosmtpd handler: faults, the token check and the mailbox, over the sandbox's State."""

    def __init__(self, state: State) -> None:
        self.state = state

    def _log(
        self,
        method: str,
        status: int | None,
        grant: Grant | None,
        *,
        fault: str | None = None,
        reason: str | None = None,
    ) -> None:
        """One line in /_sandbox/calls, as HTTP calls have (status: the SMTP reply code)."""
        entry = {
            "method": method,
            "client_id": grant.client_id if grant else None,
            "project": grant.project if grant else None,
            "user": grant.user if grant else None,
            "fault": fault,
            "time": rfc3339(self.state.clock.now()),
            "status": status,
            "reason": reason,
            "batch": False,
        }
        with self.state.lock:
            self.state.calls.append(entry)

    async def faulted(
        self, server: GmailSMTP, method: str, grant: Grant | None
    ) -> tuple[str | None, dict | None]:
        """Apply the latency and the first fault rule for ``method``: (the reply to give
        instead, or None to go on; the rule). A drop hangs up here."""
        with self.state.lock:
            delay = faults.latency_for(self.state, method)
            rule = faults.take_fault(self.state, method, grant.project if grant else None)
        if delay:
            await asyncio.sleep(delay)
        if rule is None:
            return None, None
        if rule["kind"] == "timeout":
            await asyncio.sleep(rule["seconds"])
            return None, rule
        if rule["kind"] == "applied_response_lost" and method == "smtp.data":
            return None, rule  # the message is kept, then the line drops
        if rule["kind"] != "error":  # drop, or a lost answer where nothing is applied
            self._log(method, None, grant, fault=rule["kind"], reason="connection dropped")
            await server.hang_up()
        reply = fault_reply(rule, server.tag)
        self._log(method, rule["status"], grant, fault="error", reason=reply[4:])
        return reply, rule

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook names
        self,
        server: GmailSMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        peer = session.peer[0] if isinstance(session.peer, tuple) else session.peer
        offered = [r[4:] for r in responses[1:] if r[4:] != "HELP"] + ["ENHANCEDSTATUSCODES"]
        lines = [f"{server.hostname} at your service, [{peer}]", *offered]
        return [f"250-{line}" for line in lines[:-1]] + [f"250 {lines[-1]}"]

    async def handle_AUTH(  # noqa: N802
        self, server: GmailSMTP, session: Session, envelope: Envelope, args: list[str]
    ) -> Any:
        reply, _ = await self.faulted(server, "smtp.auth", None)
        return MISSING if reply is None else reply

    async def auth_XOAUTH2(self, server: GmailSMTP, args: list[str]) -> AuthResult:  # noqa: N802
        """Google's SASL XOAUTH2 (developers.google.com/gmail/imap/xoauth2-protocol)."""
        if len(args) == 1:
            blob: Any = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except binascii.Error:
                blob = b""
        found = parse_xoauth2(blob)
        if found is None:
            await server.push(f"501 5.5.2 Cannot Decode response {server.tag}")
            return AuthResult(success=False, handled=True)
        user, token = found
        with self.state.lock:
            record, status, why = check_token(self.state, user, token)
        if record is not None:
            grant = Grant(record["user"], record["client_id"], record.get("project"))
            self._log("smtp.auth", 235, grant)
            return AuthResult(success=True, auth_data=grant, message="235 2.7.0 Accepted")
        self._log("smtp.auth", 535, Grant(user.lower(), "", None), reason=why)
        challenge = {"status": status, "schemes": "Bearer", "scope": tokens.GMAIL_FULL_SCOPE}
        answer = await server.challenge_auth(json.dumps(challenge, separators=(",", ":")))
        if answer is MISSING:  # the client gave up with "*": aiosmtpd answered 501
            return AuthResult(success=False, handled=True)
        return AuthResult(
            success=False, handled=False, message=BAD_CREDENTIALS.format(tag=server.tag)
        )

    async def handle_MAIL(  # noqa: N802
        self,
        server: GmailSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        reply, _ = await self.faulted(server, "smtp.mail", session.auth_data)
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return f"250 2.1.0 OK {server.tag}"

    async def handle_RCPT(  # noqa: N802
        self,
        server: GmailSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return f"250 2.1.5 OK {server.tag}"

    async def handle_DATA(  # noqa: N802
        self, server: GmailSMTP, session: Session, envelope: Envelope
    ) -> str:
        grant = cast(Grant, session.auth_data)  # DATA comes only after AUTH (auth_required)
        reply, rule = await self.faulted(server, "smtp.data", grant)
        if reply is not None:
            return reply
        state = self.state
        with state.lock:
            account = state.user(grant.user)
            if account is None:  # deleted (or the sandbox reset) since AUTH
                return f"451 4.3.0 Mail server temporarily rejected message. {server.tag}"
            sent = mailbox.record(
                state,
                account=account,
                data=envelope.original_content or b"",
                via=mailbox.VIA_SMTP,
                envelope=envelope.rcpt_tos,
            )
            try:
                state.commit()  # in the state file before the 250 leaves
            except OSError:
                log.exception("could not save the sandbox state to %s", state.state_file)
        if rule is not None and rule["kind"] == "applied_response_lost":
            self._log("smtp.data", None, grant, fault=rule["kind"], reason="connection dropped")
            await server.hang_up()
        self._log("smtp.data", 250, grant)
        return f"250 2.0.0 OK {sent['id']} - gsmtp"

    async def handle_QUIT(  # noqa: N802
        self, server: GmailSMTP, session: Session, envelope: Envelope
    ) -> str:
        return f"221 2.0.0 closing connection {server.tag}"
