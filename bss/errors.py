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


class BrokerUnavailable(BssError):
    """The message broker (Redis or RabbitMQ) could not be reached or read."""

    code = "broker_unavailable"
    http_status = 503


def problems(errors: Any, *, under: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """Pydantic's errors as our `details`: each at its field path, in plain words (without
    pydantic's "Value error, " prefix on the messages of our own validators)."""
    out = []
    for e in errors:
        field = ".".join([*under, *(str(p) for p in e["loc"])]) or "body"
        message = str(e["msg"])
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        out.append({"field": field, "problem": message})
    return out


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


class OAuthFlowError(BssError):
    """An OAuth authorization could not be completed; `reason` names the failed check."""

    code = "oauth_flow"
    http_status = 400

    def __init__(self, message: str, *, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


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


class QuotaWait(BssError):
    """The instance's Cloud project has spent its quota of an API for now: the job gives its
    thread back and resumes after `seconds`, without spending an attempt."""

    code = "waiting_quota"

    def __init__(self, api: str, project: str, seconds: float, limit: float) -> None:
        super().__init__(
            f"Waiting for the {api} API quota of Cloud project {project} "
            f"({limit:g} calls/s): resumes in {seconds:.1f}s"
        )
        self.api, self.project, self.seconds, self.limit = api, project, seconds, limit


class PermanentGoogleError(GoogleError):
    """Google refused the request; retrying the same request cannot help."""

    code = "google_refused"


class GoogleAuthorizationError(GoogleError):
    """The instance's credentials no longer work: it needs re-authentication."""

    code = "google_authorization"


class RulesBroken(ValidationFailed):
    """A request refused on submission because it breaks Google's rules (a TRIAL over 10 seats):
    the same code as a job refused by a rule before calling Google."""

    code = "refused_by_rule"


class RuleRefused(PermanentGoogleError):
    """Refused before calling Google: the request breaks one of Google's seat or plan rules."""

    code = "refused_by_rule"


def error_body(exc: BaseException) -> dict[str, Any]:
    """The job's `error` for an exception: code, Google's reason, message, hint."""
    if isinstance(exc, RuleRefused):  # our own refusal: Google was not asked
        return {"code": exc.code, "rule": exc.reason, "message": exc.message, "hint": exc.hint}
    if isinstance(exc, GoogleError):
        body = {
            "code": exc.code,
            "google_status": exc.status,
            "google_reason": exc.reason,
            "google_method": exc.method,
            "message": exc.message,
            "hint": exc.hint,
        }
        if exc.details:
            body["details"] = exc.details
        return body
    if isinstance(exc, BssError):
        return {"code": exc.code, "message": exc.message, "hint": exc.hint, "details": exc.details}
    if isinstance(exc, TimeoutError):
        return {
            "code": "time_limit",
            "message": f"Timed out: {exc}",
            "hint": "Retried automatically; the steps already done are not repeated.",
        }
    return {
        "code": "internal_error",
        "message": f"{type(exc).__name__}: {exc}",
        "hint": "Retried automatically; if it persists, tell the platform operator.",
    }
