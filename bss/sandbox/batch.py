"""The /batch endpoint: multipart/mixed of application/http parts, each routed like a call.

The body is parsed by hand, on bytes: clients fold long header lines (google-api-python-client
folds any ``Content-ID`` past 78 characters), mix CRLF and LF, and send parts without a body.
Header values are read and written as latin-1, as WSGI does, so they round-trip byte for byte.
"""

from __future__ import annotations

import re
import secrets
from http import HTTPStatus
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, request
from werkzeug.http import parse_options_header

from bss.sandbox.errors import ApiError, DropConnection

bp = Blueprint("batch", __name__)

#: Most calls one batch may carry (Gmail allows 100).
MAX_CALLS = 1000
MAX_GMAIL_CALLS = 100
IN_BATCH = "sandbox.in_batch"

#: Inner response headers copied into each part's answer.
ECHOED_HEADERS = ("Content-Type", "WWW-Authenticate")
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
#: RFC 5322 2.2.3 (MIME part headers): remove the line break, keep the space or tab.
MIME_FOLD = (re.compile(rb"\r?\n(?=[ \t])"), b"")
#: RFC 9112 5.2 (the inner HTTP requests): replace line break and whitespace by one space.
HTTP_FOLD = (re.compile(rb"\r?\n[ \t]+"), b" ")
_LINE_END = re.compile(rb"\r?\n")

Headers = list[tuple[str, str]]
InnerRequest = tuple[str, str, Headers, bytes]


def _bad(message: str) -> ApiError:
    return ApiError(400, "badRequest", message)


def split_parts(body: bytes, boundary: bytes) -> list[bytes]:
    """The body parts between the delimiters (RFC 2046 5.1.1: the line break before a
    delimiter belongs to it); preamble and epilogue are dropped."""
    delimiter = re.compile(rb"(?:^|\r?\n)--" + re.escape(boundary) + rb"(--)?[ \t]*(?:\r?\n|$)")
    parts: list[bytes] = []
    start: int | None = None
    for match in delimiter.finditer(body):
        if start is not None:
            parts.append(body[start : match.start()])
        if match.group(1):
            return parts
        start = match.end()
    raise _bad("The batch body is not a complete multipart/mixed message.")


def split_head(block: bytes, fold: tuple[re.Pattern[bytes], bytes]) -> tuple[Headers, bytes]:
    """(headers, body) of a header block and what follows its blank line, folded header
    lines unfolded by the ``fold`` rule (a line break followed by a space or tab)."""
    if block.startswith((b"\n", b"\r\n")):
        head, body = b"", block[1 if block.startswith(b"\n") else 2 :]
    else:
        blank = _BLANK_LINE.search(block)
        head, body = (block[: blank.start()], block[blank.end() :]) if blank else (block, b"")
    headers = []
    for line in _LINE_END.split(fold[0].sub(fold[1], head)):
        name, colon, value = line.partition(b":")
        if not line.strip():
            continue
        if not colon or not name.strip():
            raise _bad(f"Malformed header line in batch part: {line[:80]!r}")
        headers.append((name.strip().decode("latin-1"), _one_line(value.decode("latin-1"))))
    return headers, body


def _one_line(value: str) -> str:
    """The value with no line breaks left, trimmed: safe to write on one header line."""
    return re.sub(r"[\r\n]+", " ", value).strip()


def _header(headers: Headers, name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name.lower()), None)


def reply_id(content_id: str) -> str:
    """Google's Content-ID for the answer: ``<x>`` becomes ``<response-x>``, ``x``
    ``response-x``."""
    if content_id.startswith("<") and content_id.endswith(">"):
        return "<response-" + content_id[1:]
    return "response-" + content_id


def _parts() -> list[tuple[str | None, InnerRequest]]:
    """(Content-ID, inner request) of each part of the batch body, all parsed before any runs."""
    ctype, options = parse_options_header(request.headers.get("Content-Type", ""))
    boundary = options.get("boundary")
    if ctype.lower() != "multipart/mixed" or not boundary:
        raise _bad("Batch requests must be multipart/mixed with a boundary.")
    parts = []
    for block in split_parts(request.get_data(), boundary.encode("latin-1")):
        headers, payload = split_head(block, MIME_FOLD)
        parts.append((_header(headers, "Content-ID"), inner_request(payload)))
    return parts


def inner_request(payload: bytes) -> InnerRequest:
    """(method, path and query, headers, body) of an application/http request."""
    request_line, _, rest = payload.lstrip(b"\r\n").partition(b"\n")
    method, _, target = request_line.decode("latin-1").strip().partition(" ")
    uri = target.strip().split(" ")[0]
    if not method or not uri:
        raise _bad(f"Malformed request line in batch part: {request_line[:80]!r}")
    if "://" in uri:
        # An absolute URI: the origin is ours whatever it says; keep path and query.
        split = urlsplit(uri)
        uri = (split.path or "/") + ("?" + split.query if split.query else "")
    headers, data = split_head(rest, HTTP_FOLD)
    headers = [(k, v) for k, v in headers if k.lower() not in ("host", "content-length")]
    return method.upper(), uri, headers, data


def _run(inner: InnerRequest) -> bytes:
    """Run one inner call through the app; its answer as application/http."""
    method, uri, headers, data = inner
    client = current_app.test_client()
    response = client.open(
        uri,
        method=method,
        headers=headers,
        data=data or None,
        base_url=request.host_url,
        environ_overrides={IN_BATCH: True, "REMOTE_ADDR": request.remote_addr or ""},
    )
    if response.headers.get("X-Sandbox-Drop"):
        raise DropConnection()
    content = response.get_data()
    phrase = HTTPStatus(response.status_code).phrase
    lines = [f"HTTP/1.1 {response.status_code} {phrase}"]
    lines += [
        f"{n}: {_one_line(response.headers[n])}" for n in ECHOED_HEADERS if n in response.headers
    ]
    lines.append(f"Content-Length: {len(content)}")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + content


@bp.post("/batch")
@bp.post("/batch/<path:api>")
def batch(api: str = "") -> Response:
    parts = _parts()
    limit = MAX_GMAIL_CALLS if api.startswith("gmail") else MAX_CALLS
    if len(parts) > limit:
        raise _bad(f"A batch may carry at most {limit} calls.")
    boundary = "batch_" + secrets.token_hex(12)
    chunks = []
    for content_id, inner in parts:
        head = "Content-Type: application/http\r\n"
        if content_id:
            head += f"Content-ID: {reply_id(content_id)}\r\n"
        chunks.append(f"--{boundary}\r\n{head}\r\n".encode("latin-1") + _run(inner) + b"\r\n")
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    return Response(body, status=200, content_type=f"multipart/mixed; boundary={boundary}")
