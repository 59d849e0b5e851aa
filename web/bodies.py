"""Request bodies checked before anything reads them: size, JSON nesting, and, on the billing
API, that the body is a JSON object, each refusal said in the client's terms with one log line.
No text of a request (query, form or JSON) may hold the NUL character: PostgreSQL stores no text
with it, so it would fail deep in a statement as a server error.

Oversized bodies are refused from Content-Length (413) and, when it is absent, by Flask's
MAX_CONTENT_LENGTH while reading. Nesting is counted on the raw bytes, without recursion, so a
body 100,000 levels deep costs one pass and no traceback.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, request

from web.errors import error_json

log = logging.getLogger(__name__)

_OPEN, _CLOSE, _QUOTE, _BACKSLASH = frozenset(b"[{"), frozenset(b"]}"), 0x22, 0x5C


def json_depth_exceeds(raw: bytes, limit: int) -> bool:
    """Whether arrays and objects in `raw` nest more than `limit` deep (strings skipped)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth, in_string, escaped = 0, False, False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > limit:
                return True
        elif byte in _CLOSE:
            depth -= 1
    return False


NUL = "\x00"
_ESCAPED_NUL = b"\\u0000"


def nul_in(value: Any, where: str) -> str | None:
    """The name of the first text in `value` (JSON: objects, lists, strings) holding NUL, as a
    path from `where` (e.g. params.customer.name), or None."""
    stack: list[tuple[str, Any]] = [(where, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                return path
        elif isinstance(item, dict):
            for key, inner in item.items():
                named = f"{path}.{key}" if path else str(key)
                if NUL in str(key):
                    return named
                stack.append((named, inner))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", inner) for i, inner in enumerate(item))
    return None


def _nul_refused(field: str):
    return _refuse(
        400,
        "invalid_text",
        f"{field} contains the NUL character (U+0000), which no text here may hold.",
    )


def _refuse(status: int, code: str, message: str):
    log.warning(
        "refused %s %s from %s: %s", request.method, request.path, request.remote_addr, code
    )
    return error_json(status, code, message)


def init_app(app: Flask) -> None:
    settings = app.config["BSS_SETTINGS"]
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes

    @app.before_request
    def _check_body():
        if NUL in request.path:
            return _nul_refused("The path")
        for name, value in request.args.items(multi=True):
            if NUL in name or NUL in value:
                return _nul_refused(f"The query parameter {name.replace(NUL, '')!r}")
        if request.method not in ("POST", "PUT", "PATCH"):
            return None
        if (request.content_length or 0) > settings.max_body_bytes:
            return _refuse(
                413,
                "body_too_large",
                f"The body is {request.content_length} bytes; at most "
                f"{settings.max_body_bytes} are accepted.",
            )
        api = request.path.startswith("/api/")
        if not (request.is_json or api):  # forms: their own size limit is enough
            for name, value in request.form.items(multi=True):
                if NUL in name or NUL in value:
                    return _nul_refused(f"The form field {name.replace(NUL, '')!r}")
            return None
        raw = request.get_data(cache=True)
        if api and not raw.strip():
            return None  # no body (cancel): the route says whether it needs one
        if api and not request.is_json:
            return _refuse(
                415,
                "unsupported_media_type",
                "Send the body as JSON, with the header Content-Type: application/json.",
            )
        if json_depth_exceeds(raw, settings.max_json_depth):
            return _refuse(
                400,
                "body_too_deep",
                f"The JSON body nests arrays and objects more than {settings.max_json_depth} "
                "levels deep.",
            )
        # Parsed once, into the request's cache the API's validation reads from
        body = request.get_json(silent=True)
        if body is None:
            try:
                json.loads(raw)  # a body of `null`, or one that does not parse: say where
            except ValueError as exc:
                where = f": {exc}" if isinstance(exc, json.JSONDecodeError) else ""
                return _refuse(400, "invalid_json", f"The body is not valid JSON{where}.")
        if api and not isinstance(body, dict):
            return _refuse(
                400, "invalid_json", "The body must be a JSON object ({...}), not a list or value."
            )
        if _ESCAPED_NUL in raw:  # else no text of the body holds NUL: JSON escapes it so
            field = nul_in(body, "")
            if field is not None:
                return _nul_refused(f"The body's field {field.replace(NUL, '')!r}")
        return None
