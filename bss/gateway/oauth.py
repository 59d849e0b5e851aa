"""OAuth 2.0 and OpenID Connect with Google: authorization URLs, code exchange, id tokens,
revocation, refreshes and service-account tokens. Built on google-auth-oauthlib's Flow."""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from google.auth import exceptions as auth_exceptions
from google.auth.transport.requests import Request
from google.oauth2 import id_token as google_id_token
from google.oauth2 import service_account
from google_auth_oauthlib.flow import Flow
from oauthlib.oauth2.rfc6749.errors import OAuth2Error

from bss.errors import GoogleAuthorizationError, GoogleError, OAuthFlowError, TransientGoogleError
from bss.gateway.credentials import token_uri
from bss.gateway.errors import refresh_error
from bss.settings import GOOGLE_ISSUERS, Settings

# requests-oauthlib logs whole token responses at DEBUG: they must never reach a log.
logging.getLogger("requests_oauthlib").setLevel(logging.INFO)
logging.getLogger("oauthlib").setLevel(logging.INFO)

OPENID_SCOPES = ("openid", "https://www.googleapis.com/auth/userinfo.email")


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, and what the callback must bring back."""

    url: str
    state: str
    code_verifier: str


@dataclass(frozen=True)
class TokenGrant:
    """What Google answered to a code exchange. Never logged or shown."""

    access_token: str
    refresh_token: str | None
    granted_scopes: list[str]
    expires_at: datetime | None
    id_token: str | None = field(default=None, repr=False)
    # When the refresh token stops working, when Google gave it a lifetime
    # (`refresh_token_expires_in`: a consent screen in Testing, or time-limited access)
    refresh_token_expires_at: datetime | None = None


def _allow_plain_http(url: str, settings: Settings) -> None:
    """oauthlib refuses http:// endpoints unless told otherwise through the environment; the
    local sandbox speaks http, so outside production the flag is set for it (never for Google)."""
    if urlsplit(url).scheme == "http" and not settings.is_production:
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"


def _client_config(client_id: str, client_secret: str, settings: Settings) -> dict[str, Any]:
    return {
        "web": {
            "client_id": client_id,
            "client_secret": client_secret,
            "auth_uri": settings.google_auth_uri,
            "token_uri": settings.google_token_uri,
        }
    }


def authorization_request(
    *,
    settings: Settings,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    scopes: list[str],
    nonce: str | None = None,
    login_hint: str | None = None,
) -> AuthorizationRequest:
    """Google's authorization URL with a fresh `state` and PKCE (S256), asking for offline
    access with a consent screen shown every time, so that a refresh token always comes back."""
    _allow_plain_http(settings.google_auth_uri, settings)
    flow = Flow.from_client_config(
        _client_config(client_id, client_secret, settings),
        scopes=scopes,
        redirect_uri=redirect_uri,
        autogenerate_code_verifier=True,
    )
    extra: dict[str, str] = {}
    if nonce:
        extra["nonce"] = nonce
    if login_hint:
        extra["login_hint"] = login_hint
    url, state = flow.authorization_url(
        access_type="offline", prompt="consent", include_granted_scopes="true", **extra
    )
    return AuthorizationRequest(url=url, state=state, code_verifier=str(flow.code_verifier))


def exchange_code(
    *,
    settings: Settings,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    scopes: list[str],
    state: str,
    code_verifier: str,
    code: str,
) -> TokenGrant:
    """Trade the callback's code for tokens, with the PKCE verifier stored at the start.

    Raises OAuthFlowError with Google's error code as `reason` (`invalid_client`,
    `invalid_grant`, `redirect_uri_mismatch`...), or `token_endpoint_unreachable`.
    """
    _allow_plain_http(settings.google_token_uri, settings)
    flow = Flow.from_client_config(
        _client_config(client_id, client_secret, settings),
        scopes=scopes,
        redirect_uri=redirect_uri,
        state=state,
        code_verifier=code_verifier,
        autogenerate_code_verifier=False,
    )
    try:
        token: Any = flow.fetch_token(code=code, timeout=settings.google_http_timeout)
    except Warning as changed:
        # oauthlib raises (not warns) when Google grants other scopes than asked; the granted
        # ones are exactly what we need to check, so take the token it parsed.
        token = getattr(changed, "token", None)
        if token is None:
            raise
    except OAuth2Error as exc:
        raise OAuthFlowError(
            exc.description or exc.error, reason=exc.error or "oauth_error"
        ) from None
    except requests.RequestException as exc:
        raise OAuthFlowError(
            f"Google's token endpoint {settings.google_token_uri} did not answer "
            f"({type(exc).__name__}).",
            reason="token_endpoint_unreachable",
        ) from None
    scope = token.get("scope") or ""
    granted = scope.split() if isinstance(scope, str) else list(scope)
    expires_in = token.get("expires_in")
    now = datetime.now(UTC)
    expires_at = now + timedelta(seconds=float(expires_in)) if expires_in else None
    refresh_in = token.get("refresh_token_expires_in")
    return TokenGrant(
        access_token=str(token.get("access_token") or ""),
        refresh_token=token.get("refresh_token") or None,
        granted_scopes=granted,
        expires_at=expires_at,
        id_token=token.get("id_token") or None,
        refresh_token_expires_at=(
            now + timedelta(seconds=float(refresh_in))
            if refresh_in and token.get("refresh_token")
            else None
        ),
    )


@functools.lru_cache(maxsize=8)
def _discovery(url: str, timeout: float) -> dict[str, Any]:
    resp = requests.get(url, timeout=timeout)
    resp.raise_for_status()
    return dict(resp.json())


def verify_id_token(
    *, settings: Settings, token: str, audience: str, nonce: str | None = None
) -> dict[str, Any]:
    """The claims of a Google id token, after checking signature, audience, issuer, expiry
    and (when given) the nonce. Raises OAuthFlowError(reason="invalid_id_token")."""
    try:
        discovery = _discovery(settings.google_oidc_discovery_url, settings.google_http_timeout)
        claims = dict(
            google_id_token.verify_token(
                token, Request(), audience=audience, certs_url=discovery["jwks_uri"]
            )
        )
    except Exception as exc:  # noqa: BLE001 - every failure means the same: not trusted
        raise OAuthFlowError(
            f"Google's identity token could not be verified ({type(exc).__name__}).",
            reason="invalid_id_token",
        ) from None
    issuers = {discovery.get("issuer"), *GOOGLE_ISSUERS}
    if claims.get("iss") not in issuers:
        raise OAuthFlowError("The identity token has a foreign issuer.", reason="invalid_id_token")
    if nonce is not None and claims.get("nonce") != nonce:
        raise OAuthFlowError(
            "The identity token's nonce does not match.", reason="invalid_id_token"
        )
    return claims


def revoke_token(*, settings: Settings, token: str) -> bool:
    """Revoke a refresh (or access) token at Google. False when Google says it is already
    dead; raises TransientGoogleError when Google cannot be reached."""
    try:
        resp = requests.post(
            settings.google_revoke_uri,
            data={"token": token},
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=settings.google_http_timeout,
        )
    except requests.RequestException as exc:
        raise TransientGoogleError(
            f"Google's revocation endpoint {settings.google_revoke_uri} did not answer "
            f"({type(exc).__name__}).",
            method="oauth2.revoke",
        ) from None
    if resp.status_code == 200:
        return True
    if resp.status_code == 400:
        return False
    raise TransientGoogleError(
        f"Google's revocation endpoint answered HTTP {resp.status_code}.",
        status=resp.status_code,
        method="oauth2.revoke",
    )


@dataclass(frozen=True)
class Refreshed:
    """A refresh that worked: when the new access token expires and what it covers."""

    expires_at: datetime | None
    scopes: list[str]


def refresh(credentials: Any) -> Refreshed:
    """Obtain a fresh access token for `credentials`; raises a classified GoogleError."""
    try:
        credentials.refresh(Request())
    except auth_exceptions.RefreshError as exc:
        raise refresh_error(exc, "oauth2.token") from exc
    except auth_exceptions.TransportError as exc:
        raise TransientGoogleError(
            f"Google's token endpoint {token_uri(credentials)} did not answer "
            f"({type(exc).__name__}).",
            method="oauth2.token",
        ) from None
    expiry = credentials.expiry
    expires_at = expiry.replace(tzinfo=UTC) if expiry is not None else None
    scopes = list(
        getattr(credentials, "granted_scopes", None) or getattr(credentials, "scopes", None) or []
    )
    return Refreshed(expires_at=expires_at, scopes=scopes)


def service_account_token(
    *, settings: Settings, key: dict[str, Any], subject: str, scopes: list[str]
) -> Refreshed:
    """A token for the service account acting as `subject` (domain-wide delegation)."""
    try:
        creds = service_account.Credentials.from_service_account_info(
            dict(key, token_uri=settings.google_token_uri), scopes=scopes
        ).with_subject(subject)
    except (ValueError, KeyError) as exc:
        raise GoogleAuthorizationError(
            f"The service-account key is unusable ({exc}).", reason="invalid_key"
        ) from None
    return refresh(creds)


def describe(exc: GoogleError) -> str:
    """Google's answer in one line: reason and message."""
    return f"{exc.reason}: {exc.message}" if exc.reason else exc.message
