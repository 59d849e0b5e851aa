"""Classification of Google's errors, done once, here."""

from __future__ import annotations

import json
from typing import Any

from google.auth import exceptions as auth_exceptions
from googleapiclient.errors import HttpError

from bss.errors import (
    GoogleAuthorizationError,
    GoogleError,
    PermanentGoogleError,
    TransientGoogleError,
)

RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}
DAILY_LIMIT_REASONS = {"dailyLimitExceeded"}
AUTH_REASONS = {"insufficientPermissions", "authError"}
TRANSIENT_STATUSES = {408, 429, 500, 502, 503, 504}

HINTS = {
    "notFound": "Google has no such resource: check the customer domain or id and the SKU.",
    "duplicate": "It already exists at Google.",
    "conditionNotMet": "A precondition failed at Google (for example the customer has no admin, "
    "or the plan does not allow this change).",
    "forbidden": "Google refused access: the customer may belong to another reseller, "
    "reseller access may be off, or the transfer token may be wrong.",
    "domainCannotUseApis": "The domain cannot use the API; check the customer's status in the "
    "Partner Sales Console.",
    "accessNotConfigured": "Enable the API in the instance's Google Cloud project "
    "(APIs & Services > Library), then retry.",
    "insufficientPermissions": "The instance's token lacks a required scope: re-authenticate the "
    "instance and tick every requested permission.",
    "invalid": "Google rejected a field of the request: correct it and submit a new job.",
    "badRequest": "Google rejected the request: correct it and submit a new job.",
}


def _error_body(exc: HttpError) -> dict[str, Any]:
    try:
        body = json.loads(exc.content.decode("utf-8", "replace"))
    except (ValueError, AttributeError):
        return {}
    return body.get("error", {}) if isinstance(body, dict) else {}


def reason_of(exc: HttpError) -> str | None:
    """Google's machine-readable reason (`notFound`, `duplicate`...) of an HttpError."""
    err = _error_body(exc)
    for item in err.get("errors") or []:
        if isinstance(item, dict) and item.get("reason"):
            return str(item["reason"])
    for item in err.get("details") or []:
        if isinstance(item, dict) and item.get("reason"):
            return str(item["reason"])
    return None


def is_rate_limit(err: BaseException) -> bool:
    """Whether Google's answer says we call too fast: 429, or 403/503 with a rate-limit reason
    (the Admin SDK answers 403, the Reseller API and License Manager 503)."""
    return isinstance(err, TransientGoogleError) and (
        err.status == 429 or (err.status in (403, 503) and err.reason in RATE_LIMIT_REASONS)
    )


def classify_http_error(exc: HttpError, method: str) -> GoogleError:
    """The domain error that says what to do about Google's answer `exc`."""
    status = int(exc.resp.status)
    reason = reason_of(exc)
    message = _error_body(exc).get("message") or exc._get_reason() or f"HTTP {status}"
    kw: dict[str, Any] = {"status": status, "reason": reason, "method": method}
    if status in TRANSIENT_STATUSES or (
        status == 403 and reason in RATE_LIMIT_REASONS | DAILY_LIMIT_REASONS
    ):
        retry_after = 3600.0 if reason in DAILY_LIMIT_REASONS else None
        header = exc.resp.get("retry-after") if hasattr(exc.resp, "get") else None
        if header and str(header).isdigit():
            retry_after = float(header)
        return TransientGoogleError(message, retry_after=retry_after, **kw)
    if status == 401 or (status == 403 and reason in AUTH_REASONS):
        return GoogleAuthorizationError(message, hint=HINTS.get(reason or ""), **kw)
    return PermanentGoogleError(message, hint=HINTS.get(reason or ""), **kw)


def refresh_error(exc: auth_exceptions.RefreshError, method: str) -> GoogleError:
    """What a failed token refresh means: a dead grant needs re-authentication."""
    data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
    code = data.get("error") or ""
    desc = data.get("error_description") or str(exc.args[0] if exc.args else exc)
    if getattr(exc, "retryable", False) or code in ("temporarily_unavailable", "server_error"):
        return TransientGoogleError(f"Token refresh failed: {desc}", reason=code, method=method)
    hint = "Re-authenticate the instance in the portal (Authenticate Instance)."
    if code == "unauthorized_client":
        hint = (
            "The service account is not delegated for these scopes: add its client id and the "
            "scopes under Security > API controls > Domain-wide delegation in the Admin console."
        )
    return GoogleAuthorizationError(
        f"Google refused the instance's credentials: {code or desc} ({desc})",
        status=400 if code else None,
        reason=code or "refresh_failed",
        method="oauth2.token",
        hint=hint,
    )
