"""One tree of errors for the core; the web and worker edges translate them."""

from __future__ import annotations

from typing import Any


class BssError(Exception):
    """Base of every error the core raises on purpose."""

    code = "error"
    http_status = 500

    def __init__(self, message: str, *, details: Any = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.hint = hint


class ConfigurationError(BssError):
    """The service is configured in a way it cannot run with."""

    code = "configuration"


class ValidationFailed(BssError):
    """A request was refused; `details` lists every bad field with why."""

    code = "validation_failed"
    http_status = 422


class NotFound(BssError):
    """No such thing, or not one the caller may see."""

    code = "not_found"
    http_status = 404


class Unauthorized(BssError):
    """No valid credentials were presented."""

    code = "unauthorized"
    http_status = 401


class IdempotencyConflict(BssError):
    """The Idempotency-Key was already used with a different request."""

    code = "idempotency_key_reused"
    http_status = 422


class InvalidState(BssError):
    """The thing is not in a state that allows the action."""

    code = "invalid_state"
    http_status = 409


class GoogleError(BssError):
    """A Google call failed; subclasses say what to do about it."""

    code = "google_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        method: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.reason = reason
        self.method = method


class TransientGoogleError(GoogleError):
    """Worth retrying later: rate limits, 5xx, timeouts, dropped connections."""

    code = "google_transient"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class PermanentGoogleError(GoogleError):
    """Google refused the request; retrying the same request cannot help."""

    code = "google_refused"


class GoogleAuthorizationError(GoogleError):
    """The instance's credentials no longer work: it needs re-authentication."""

    code = "google_authorization"
