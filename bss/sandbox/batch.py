"""The /batch endpoint: multipart/mixed of application/http parts, each routed like a call."""

from __future__ import annotations

import email.policy
import secrets
from email.message import Message
from email.parser import BytesParser, Parser
from http import HTTPStatus
from typing import cast

from flask import Blueprint, Response, current_app, request

from bss.sandbox.errors import ApiError, DropConnection

bp = Blueprint("batch", __name__)

#: Most calls one batch may carry (Gmail allows 100).
MAX_CALLS = 1000
MAX_GMAIL_CALLS = 100
IN_BATCH = "sandbox.in_batch"


def _parts() -> list[tuple[str, str]]:
    """(Content-ID, application/http payload) of each part of the batch body."""
    ctype = request.headers.get("Content-Type", "")
    if not ctype.lower().startswith("multipart/mixed") or "boundary" not in ctype:
        raise ApiError(400, "badRequest", "Batch requests must be multipart/mixed with a boundary.")
    whole = b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + request.get_data()
    message = BytesParser(policy=email.policy.compat32).parsebytes(whole)
    # get_payload() is a list of parts for a multipart message and a string for any other.
    parts = cast(list[Message], message.get_payload()) if message.is_multipart() else []
    return [(part.get("Content-ID", ""), cast(str, part.get_payload())) for part in parts]


def _run(content_id: str, payload: str) -> str:
    """Run one inner call through the app and serialize its response as application/http."""
    request_line, _, rest = payload.lstrip("\r\n").partition("\n")
    method, uri, *_ = request_line.strip().split(" ")
    inner = Parser().parsestr(rest)
    headers = [(k, v) for k, v in inner.items() if k.lower() not in ("host", "content-length")]
    data = cast(str, inner.get_payload())
    client = current_app.test_client()
    response = client.open(
        uri,
        method=method,
        headers=headers,
        data=data.encode() if data else None,
        base_url=request.host_url,
        environ_overrides={IN_BATCH: True, "REMOTE_ADDR": request.remote_addr or ""},
    )
    if response.headers.get("X-Sandbox-Drop"):
        raise DropConnection()
    phrase = HTTPStatus(response.status_code).phrase
    lines = [f"HTTP/1.1 {response.status_code} {phrase}"]
    for name in ("Content-Type", "WWW-Authenticate"):
        if response.headers.get(name):
            lines.append(f"{name}: {response.headers[name]}")
    content = response.get_data(as_text=True)
    lines.append(f"Content-Length: {len(content.encode())}")
    reply_id = content_id
    if content_id.startswith("<") and content_id.endswith(">"):
        reply_id = "<response-" + content_id[1:]
    head = f"Content-Type: application/http\r\nContent-ID: {reply_id}\r\n\r\n"
    return head + "\r\n".join(lines) + "\r\n\r\n" + content


@bp.post("/batch")
@bp.post("/batch/<path:api>")
def batch(api: str = "") -> Response:
    parts = _parts()
    limit = MAX_GMAIL_CALLS if api.startswith("gmail") else MAX_CALLS
    if len(parts) > limit:
        raise ApiError(400, "badRequest", f"A batch may carry at most {limit} calls.")
    boundary = "batch_" + secrets.token_hex(12)
    chunks = [f"--{boundary}\r\n" + _run(cid, payload) + "\r\n" for cid, payload in parts]
    text = "".join(chunks) + f"--{boundary}--\r\n"
    return Response(text, status=200, content_type=f"multipart/mixed; boundary={boundary}")
