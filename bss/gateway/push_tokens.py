"""Checking the OIDC token Pub/Sub signs for each push: Google's keys, issuer, audience, expiry,
and the platform's own service account as the identity."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import google.auth.transport.requests
import requests
from google.oauth2 import id_token as google_id_token

from bss.errors import Unauthorized
from bss.settings import GOOGLE_ISSUERS, Settings

# Google rotates its signing keys every few days and publishes them ahead: an hour is safe.
CERTS_TTL_SECONDS = 3600.0
# Google's keys are fetched again for an unknown key id at most this often.
CERTS_REFETCH_SECONDS = 60.0


class PushTokenRefused(Unauthorized):
    """A push whose token is missing or not Google's for us; `status` 401 or 403."""

    code = "push_token_refused"

    def __init__(self, message: str, *, status: int = 401) -> None:
        super().__init__(message)
        self.status = status
        self.http_status = status


class _CachedCerts:
    """Google's JWKS by URL, fetched at most once per CERTS_TTL_SECONDS by all threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[str, tuple[float, Any]] = {}
        self._forgotten: dict[str, float] = {}
        self._session = requests.Session()

    def request(self, timeout: float) -> Any:
        """A google-auth transport that answers GETs of a cached URL from the cache."""
        transport = google.auth.transport.requests.Request(session=self._session)
        cache = self

        def send(url: str, method: str = "GET", **kwargs: Any) -> Any:
            with cache._lock:
                hit = cache._answers.get(url)
                if hit and hit[0] > time.monotonic() and method == "GET":
                    return hit[1]
            answer = transport(url, method=method, timeout=timeout, **kwargs)
            if method == "GET" and answer.status == 200:
                with cache._lock:
                    cache._answers[url] = (time.monotonic() + CERTS_TTL_SECONDS, answer)
            return answer

        return send

    def forget(self, url: str) -> bool:
        """Fetch `url` afresh next time (a key Google published since), at most once per
        CERTS_REFETCH_SECONDS: a stream of forged tokens naming unknown key ids must not make
        us fetch Google's keys on every push. Whether it was forgotten."""
        with self._lock:
            now = time.monotonic()
            if now - self._forgotten.get(url, -CERTS_REFETCH_SECONDS) < CERTS_REFETCH_SECONDS:
                return False
            self._forgotten[url] = now
            self._answers.pop(url, None)
            return True


_certs = _CachedCerts()


def _decode(settings: Settings, token: str, audience: str) -> dict[str, Any]:
    url = settings.google_certs_url

    def verify() -> dict[str, Any]:
        transport = _certs.request(settings.google_http_timeout)
        return dict(
            google_id_token.verify_token(token, transport, audience=audience, certs_url=url)
        )

    try:
        return verify()
    except Exception as exc:  # noqa: BLE001 - an unknown key: retried once with fresh keys
        unknown_key = "signing key" in str(exc) or "Certificate for key id" in str(exc)
        # a key Google published since we fetched them, or a forgery naming any key id
        if not unknown_key or not _certs.forget(url):
            raise
    return verify()


def _why(exc: Exception) -> str:
    text = str(exc).lower()
    if "expired" in text or "exp" in type(exc).__name__.lower():
        return "it has expired"
    if "audience" in text or "aud" in type(exc).__name__.lower():
        return "it was issued for another audience"
    if "signing key" in text or "signature" in text or "certificate" in text:
        return "its signature is not Google's"
    return f"it is not a valid token ({type(exc).__name__})"


def verify_push_token(
    settings: Settings,
    authorization: str | None,
    *,
    audience: str,
    service_account_email: str,
) -> dict[str, Any]:
    """The claims of a push's `Authorization: Bearer` OIDC token, after checking its signature
    (Google's keys at settings.google_certs_url), issuer, audience, expiry and that it names the
    platform's service account with a verified email. Raises PushTokenRefused in words."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise PushTokenRefused("The push has no Bearer token: Pub/Sub signs every push for us.")
    try:
        claims = _decode(settings, token.strip(), audience)
    except Exception as exc:  # noqa: BLE001 - every failure means the same: not trusted
        status = 403 if _why(exc) == "it was issued for another audience" else 401
        raise PushTokenRefused(f"The push token was refused: {_why(exc)}.", status=status) from None
    if claims.get("iss") not in GOOGLE_ISSUERS:
        raise PushTokenRefused("The push token was refused: it was not issued by Google.")
    if not service_account_email:
        raise PushTokenRefused(
            "The push was refused: notifications are off (no platform service account).",
            status=403,
        )
    email = str(claims.get("email") or "").lower()
    if email != service_account_email.lower() or claims.get("email_verified") is not True:
        raise PushTokenRefused(
            "The push token was refused: it names another service account than the platform's.",
            status=403,
        )
    return claims


def platform_service_account_email(settings: Settings) -> str:
    """The email of the platform's service account (BSS_EVENTS_SERVICE_ACCOUNT_FILE's
    client_email); empty when notifications are off or the file cannot be read."""
    path = settings.events_service_account_file
    if not path:
        return ""
    try:
        with open(path, encoding="utf-8") as f:
            return str(json.load(f).get("client_email") or "")
    except (OSError, ValueError, AttributeError):
        return ""
