"""Gmail API: users.messages.send; the message is kept in bss.sandbox.mailbox for inspection."""

from __future__ import annotations

import base64
import binascii
import email.policy
from email.message import Message
from email.parser import BytesParser
from typing import cast

from flask import Blueprint, Response, request

from bss.sandbox import mailbox
from bss.sandbox.api import api_method, body, caller, ok
from bss.sandbox.errors import ApiError, forbidden
from bss.sandbox.state import current_state

bp = Blueprint("gmail", __name__)

RAW_REQUIRED = "'raw' RFC822 payload message string or uploading message via /upload/* URL required"


def invalid(message: str) -> ApiError:
    return ApiError(400, "invalidArgument", message)


def _decode(raw: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        raise invalid("Invalid value for ByteString: " + raw[:20]) from None


def _raw_from_request() -> bytes:
    """The RFC 822 bytes: JSON {"raw"}, or a media upload (uploadType=media or multipart)."""
    upload = request.args.get("uploadType")
    if upload == "media":
        return request.get_data()
    if upload == "multipart":
        ctype = request.headers.get("Content-Type", "")
        whole = b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + request.get_data()
        parsed = BytesParser(policy=email.policy.compat32).parsebytes(whole)
        # get_payload() is a list of parts for a multipart message and a string for any other.
        parts = cast(list[Message], parsed.get_payload()) if parsed.is_multipart() else []
        if len(parts) == 2:
            return cast(str, parts[1].get_payload(decode=False)).encode()
        raise invalid(RAW_REQUIRED)
    raw = body().get("raw")
    if not isinstance(raw, str) or not raw:
        raise invalid(RAW_REQUIRED)
    return _decode(raw)


def send(userId: str) -> Response:  # noqa: N803 - the discovery name
    state = current_state()
    me = caller().user
    if userId not in ("me", me) and userId.lower() != me:
        raise forbidden(f"Delegation denied for {userId}")
    account = state.user(me)
    if account is None:  # e.g. a service account without domain-wide delegation
        raise ApiError(400, "failedPrecondition", "Precondition check failed.")
    data = _raw_from_request()
    message = mailbox.parse(data)
    if not any(mailbox.addresses(message, field) for field in ("To", "Cc", "Bcc")):
        raise invalid("Recipient address required")
    message_id = mailbox.record(state, account=account, data=data, via=mailbox.VIA_GMAIL_API)["id"]
    return ok({"id": message_id, "threadId": message_id, "labelIds": ["SENT"]})


@bp.post("/gmail/v1/users/<userId>/messages/send")
@api_method("gmail.users.messages.send")
def send_message(userId: str) -> Response:  # noqa: N803
    return send(userId)


@bp.post("/upload/gmail/v1/users/<userId>/messages/send")
@api_method("gmail.users.messages.send")
def upload_message(userId: str) -> Response:  # noqa: N803
    return send(userId)
