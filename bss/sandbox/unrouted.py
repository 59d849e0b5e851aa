"""Requests under an API's path that match no modelled method: Google's JSON 404, logged.

Google's front end routes by HTTP method and path together, so an unknown path and a known
path with a method it does not have both answer 404 ``notFound`` "Not Found" in the API's own
error shape (there is no 405). The sandbox logs them in /_sandbox/calls as method
``unknown`` with their HTTP method and path, so a call it does not model is visible.
"""

from __future__ import annotations

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from bss.sandbox import tokens
from bss.sandbox.errors import ApiError, json_response
from bss.sandbox.state import current_state

#: Path prefix -> the API (method-id prefix) whose error shape answers there.
PREFIXES = {
    "/apps/reseller/v1/": "reseller",
    "/admin/directory/v1/": "directory",
    "/apps/licensing/v1/": "licensing",
    "/gmail/v1/": "gmail",
}


def _api_of(path: str) -> str | None:
    return next((api for prefix, api in PREFIXES.items() if path.startswith(prefix)), None)


def _not_routed(error: HTTPException) -> Response | HTTPException:
    api = _api_of(request.path)
    if api is None:
        return error
    call = {
        "method": "unknown",
        "http_method": request.method,
        "path": request.path,
        "client_id": None,
        "project": None,
        "user": None,
        "fault": None,
    }
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        state = current_state()
        with state.lock:
            record = tokens.bearer(state, header[7:].strip())
        if record is not None:
            call.update(
                client_id=record["client_id"], project=record["project"], user=record["user"]
            )
    g.call = call
    g.error_reason = "notFound"
    return json_response(ApiError(404, "notFound", "Not Found").body(api), 404)


def register(app: Flask) -> None:
    """Answer unrouted API requests as Google does (404 and 405 from Flask's router)."""
    app.register_error_handler(404, _not_routed)
    app.register_error_handler(405, _not_routed)
