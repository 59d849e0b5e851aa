"""Sign in with Google (OpenID Connect) for portal users."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from sqlmodel import Session

from bss.accounts.users import sign_in_with_google
from bss.crypto import Vault
from bss.errors import OAuthFlowError, Unauthorized
from bss.gateway import consume_state, oauth, save_state
from bss.models import OAuthPurpose, User
from bss.settings import Settings

SIGN_IN_SCOPES = list(oauth.OPENID_SCOPES)
CALLBACK_PATH = "/sign-in/google/callback"


def enabled(settings: Settings) -> bool:
    """Whether the portal has an OAuth client for Sign in with Google."""
    return bool(settings.google_signin_client_id and settings.google_signin_client_secret)


def redirect_uri(settings: Settings, request_base: str | None) -> str:
    """The sign-in callback on the host the user is on, if configured, else the first one."""
    bases = settings.base_urls
    base = request_base.rstrip("/") if request_base and request_base.rstrip("/") in bases else None
    return (base or bases[0]) + CALLBACK_PATH


def start(
    session: Session,
    *,
    settings: Settings,
    vault: Vault,
    browser_id: str,
    request_base: str | None = None,
) -> str:
    """Google's authorization URL for signing in; the caller commits."""
    if not enabled(settings):
        raise OAuthFlowError("Sign in with Google is not configured here.", reason="disabled")
    uri = redirect_uri(settings, request_base)
    nonce = secrets.token_urlsafe(16)
    request = oauth.authorization_request(
        settings=settings,
        client_id=settings.google_signin_client_id,
        client_secret=settings.google_signin_client_secret,
        redirect_uri=uri,
        scopes=SIGN_IN_SCOPES,
        nonce=nonce,
    )
    save_state(
        session,
        vault=vault,
        purpose=OAuthPurpose.SIGN_IN,
        state=request.state,
        code_verifier=request.code_verifier,
        browser_id=browser_id,
        redirect_uri=uri,
        client_id=settings.google_signin_client_id,
        nonce=nonce,
        display="page",
    )
    return request.url


def finish(
    session: Session,
    *,
    settings: Settings,
    vault: Vault,
    browser_id: str | None,
    params: Mapping[str, str],
) -> User:
    """The portal user behind Google's answer; raises OAuthFlowError or Unauthorized."""
    consumed = consume_state(
        session,
        vault=vault,
        state=params.get("state"),
        purpose=OAuthPurpose.SIGN_IN,
        browser_id=browser_id,
    )
    session.commit()
    if params.get("error"):
        raise OAuthFlowError(
            f"Google did not sign you in ({params['error']}). Try again, or use your password.",
            reason=params["error"],
        )
    if not params.get("code"):
        raise OAuthFlowError("Google's answer carried no code. Try again.", reason="code_missing")
    grant = oauth.exchange_code(
        settings=settings,
        client_id=settings.google_signin_client_id,
        client_secret=settings.google_signin_client_secret,
        redirect_uri=consumed.row.redirect_uri,
        scopes=SIGN_IN_SCOPES,
        state=params["state"],
        code_verifier=consumed.code_verifier,
        code=params["code"],
    )
    if not grant.id_token:
        raise Unauthorized("Google did not return an identity token. Try again.")
    claims = oauth.verify_id_token(
        settings=settings,
        token=grant.id_token,
        audience=settings.google_signin_client_id,
        nonce=consumed.row.nonce,
    )
    return sign_in_with_google(session, claims=claims)
