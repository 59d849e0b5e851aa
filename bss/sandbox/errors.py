"""Errors the sandbox raises, each knowing the wire shape Google gives it."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, g, has_request_context

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

DEFAULT_MESSAGES = {
    400: "Bad Request",
    401: "Request had invalid authentication credentials.",
    403: "The caller does not have permission",
    404: "Resource Not Found",
    409: "Entity already exists.",
    412: "Precondition check failed.",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "Internal error encountered.",
    502: "Bad Gateway",
    503: "The service is currently unavailable.",
    504: "The request timed out.",
}

JSON_TYPE = "application/json; charset=UTF-8"

#: APIs (method-id prefixes) whose own errors use the older shape, without ``status``.
LEGACY_SHAPE_APIS = frozenset({"directory", "reseller", "licensing"})


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response with Google's content type."""
    return Response(
        json.dumps(body, indent=2),
        status=status,
        headers=headers,
        mimetype=None,
        content_type=JSON_TYPE,
    )


class SandboxError(Exception):
    """Base of every error the sandbox turns into a response."""

    def response(self) -> Response:
        raise NotImplementedError


class ApiError(SandboxError):
    """A Google JSON API error, in the shape of the API that answers it.

    Google's front end (credentials, enabled API, scopes, quota) answers every API in the
    newer shape: ``{"error": {"code", "message", "errors": [...], "status", "details"}}``.
    Errors from the API itself keep that API's own shape: the Admin SDK, the Reseller API and
    the License Manager answer the older one, ``{"error": {"errors": [...], "code",
    "message"}}`` without ``status``; Gmail answers the newer one.
    """

    def __init__(
        self,
        code: int,
        reason: str,
        message: str | None = None,
        *,
        domain: str = "global",
        details: list[dict] | None = None,
        extra: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        frontend: bool = False,
    ) -> None:
        self.code = code
        self.reason = reason
        self.message = message or DEFAULT_MESSAGES.get(code, "Error")
        self.domain = domain
        self.details = details
        self.extra = extra or {}
        self.headers = headers or {}
        self.frontend = frontend
        super().__init__(f"{code} {reason}: {self.message}")

    def body(self, api: str | None = None) -> dict:
        """The JSON body as ``api`` (a method-id prefix such as ``directory``) answers it."""
        if not self.frontend and api in LEGACY_SHAPE_APIS:
            item = {"domain": self.domain, "reason": self.reason, "message": self.message}
            item.update(self.extra)
            return {"error": {"errors": [item], "code": self.code, "message": self.message}}
        item = {"message": self.message, "domain": self.domain, "reason": self.reason}
        item.update(self.extra)
        error: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "errors": [item],
            "status": STATUS_NAMES.get(self.code, "UNKNOWN"),
        }
        if self.details:
            error["details"] = self.details
        return {"error": error}

    def response(self) -> Response:
        return json_response(self.body(_api_of_call()), self.code, self.headers)


def _api_of_call() -> str | None:
    """The API of the call being answered (``directory``, ``gmail``...), from its method id."""
    if not has_request_context():
        return None
    call = g.get("call")
    method = call.get("method") if isinstance(call, dict) else None
    return method.split(".", 1)[0] if method else None


class OAuthError(SandboxError):
    """An OAuth 2.0 token-endpoint error: {"error", "error_description"}."""

    def __init__(self, status: int, error: str, description: str) -> None:
        self.status = status
        self.error = error
        self.description = description
        super().__init__(f"{status} {error}: {description}")

    def response(self) -> Response:
        body = {"error": self.error, "error_description": self.description}
        return json_response(body, self.status, {"Cache-Control": "no-store"})


class ControlError(SandboxError):
    """A mistake in a call to the sandbox's own control API."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)

    def response(self) -> Response:
        return json_response({"error": self.message}, self.status)


class DropConnection(SandboxError):
    """Close the client's connection without an answer (an injected fault)."""

    def response(self) -> Response:
        return Response(b"", status=500, headers={"X-Sandbox-Drop": "1"})


def bad_request(message: str, reason: str = "invalid") -> ApiError:
    """400 with Google's reason for a bad field."""
    return ApiError(400, reason, message)


def forbidden(
    message: str = "Authenticated user is not authorized to perform this action.",
    reason: str = "forbidden",
) -> ApiError:
    """403 forbidden."""
    return ApiError(403, reason, message)


def not_found(message: str = "Resource Not Found") -> ApiError:
    """404 notFound."""
    return ApiError(404, "notFound", message)


def conflict(message: str = "Entity already exists.") -> ApiError:
    """409 duplicate."""
    return ApiError(409, "duplicate", message)


def precondition(message: str) -> ApiError:
    """412 conditionNotMet."""
    return ApiError(412, "conditionNotMet", message)
