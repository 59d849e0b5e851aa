"""Consents that come back to our one OAuth callback: Authenticate Instance, and a notification
mailbox consenting through an instance's OAuth client. Both use the path distributors already
register, a server-side `state` with the PKCE verifier, the same checks of who comes back, and
the same words for what Google refused; each flow names its own button in them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlmodel import Session

from bss.crypto import Vault
from bss.errors import OAuthFlowError
from bss.gateway import oauth
from bss.gateway.oauth_states import ConsumedState, consume_state, save_state
from bss.settings import Settings

# The path distributors already register as the Authorized Redirect URI for this job.
OAUTH_CALLBACK_PATH = "/Setup/SystemOptions/CloudAppsConfiguration.aspx/AuthenticateGoogleWorkspace"


def redirect_uris(base_urls: Iterable[str]) -> list[str]:
    """The Authorized Redirect URI for each public base URL the portal is reachable under."""
    return [base.rstrip("/") + OAUTH_CALLBACK_PATH for base in base_urls]


def callback_redirect_uri(settings: Settings, request_base: str | None) -> str:
    """The Authorized Redirect URI for the host the user is on (so the session cookie comes
    back with the callback), or the first configured one."""
    uris = redirect_uris(settings.base_urls)
    if request_base:
        wanted = request_base.rstrip("/") + OAUTH_CALLBACK_PATH
        if wanted in uris:
            return wanted
    return uris[0]


def callback_error_message(error: str, button: str) -> str:
    """Google's `error` on the callback, in the words of the person who clicked `button`."""
    known = {
        "access_denied": "You cancelled on Google's consent page (access_denied), or ticked no "
        f"permission. Nothing was changed: click {button} again and choose Allow.",
        "admin_policy_enforced": "Your Workspace administrator blocks this app "
        "(admin_policy_enforced): allow the OAuth client under Security > API controls > App "
        "access control in the Admin console, then try again.",
        "org_internal": "The OAuth consent screen is Internal and the account you chose is "
        "outside the Cloud project's organization (org_internal): sign in with an account of "
        "that organization, or make the consent screen External.",
        "invalid_client": "Google does not know this Client ID (invalid_client): copy the Client "
        "ID of your OAuth web client from Google Cloud console (APIs & Services > Credentials).",
        "unsupported_response_type": "Google refused the request (unsupported_response_type).",
    }
    return known.get(error, f"Google answered with an error ({error}). Nothing was changed.")


def exchange_error_message(exc: OAuthFlowError, redirect_uri: str, button: str) -> str:
    """What to do about Google refusing the code exchange."""
    if exc.reason in ("invalid_client", "unauthorized_client"):
        return (
            f"Google refused the instance's client credentials ({exc.reason}): check that the "
            "Client Secret saved on the instance is the current secret of the OAuth client in "
            "Google Cloud console (APIs & Services > Credentials), then authenticate again."
        )
    if exc.reason == "redirect_uri_mismatch":
        return (
            "Google refused the redirect URI (redirect_uri_mismatch): add exactly "
            f"{redirect_uri} to the OAuth client's Authorized redirect URIs in Google Cloud "
            "console, then authenticate again."
        )
    if exc.reason == "invalid_grant":
        return (
            f"Google refused the authorization code (invalid_grant: {exc.message}). It may have "
            f"expired or been used already: click {button} again."
        )
    if exc.reason == "token_endpoint_unreachable":
        return f"{exc.message} Nothing was changed: try again in a minute."
    return f"Google refused the code exchange ({exc.reason}: {exc.message}). Nothing was changed."


def start_consent(
    session: Session,
    *,
    settings: Settings,
    vault: Vault,
    purpose: str,
    client_id: str,
    client_secret: str,
    scopes: list[str],
    user_id: int | None,
    browser_id: str,
    request_base: str | None,
    display: str = "popup",
    login_hint: str | None = None,
    instance_id: int | None = None,
    sender_id: int | None = None,
) -> oauth.AuthorizationRequest:
    """Google's authorization URL (offline access, consent shown, PKCE) back to our callback,
    and its state saved for `purpose`; the caller commits."""
    redirect_uri = callback_redirect_uri(settings, request_base)
    request = oauth.authorization_request(
        settings=settings,
        client_id=client_id,
        client_secret=client_secret,
        redirect_uri=redirect_uri,
        scopes=scopes,
        login_hint=login_hint,
    )
    save_state(
        session,
        vault=vault,
        purpose=purpose,
        state=request.state,
        code_verifier=request.code_verifier,
        browser_id=browser_id,
        redirect_uri=redirect_uri,
        user_id=user_id,
        instance_id=instance_id,
        sender_id=sender_id,
        client_id=client_id,
        display=display,
    )
    return request


def spend_state(
    session: Session,
    *,
    vault: Vault,
    params: Mapping[str, str],
    purpose: str,
    user_id: int | None,
    browser_id: str | None,
    button: str,
) -> ConsumedState:
    """Spend the callback's state (committed before Google is contacted, so a second use fails
    in every process) and check that the user who started it is the one finishing it."""
    consumed = consume_state(
        session, vault=vault, state=params.get("state"), purpose=purpose, browser_id=browser_id
    )
    session.commit()
    if user_id is None:
        raise OAuthFlowError(
            "Your portal session ended before Google answered. Nothing was changed: sign in "
            f"again and click {button}.",
            reason="signed_out",
        )
    if consumed.row.user_id != user_id:
        raise OAuthFlowError(
            f"This authorization was started by another user: the person who clicked {button} "
            "must finish it, signed in as themselves. Nothing was changed.",
            reason="state_other_user",
        )
    return consumed


def check_answer(params: Mapping[str, str], button: str) -> None:
    """Raise OAuthFlowError unless Google's answer carries an authorization code."""
    error = params.get("error")
    if error:
        raise OAuthFlowError(callback_error_message(error, button), reason=error)
    if not params.get("code"):
        raise OAuthFlowError(
            "Google's answer carried no authorization code. Nothing was changed: try again.",
            reason="code_missing",
        )


def exchange(
    *,
    settings: Settings,
    consumed: ConsumedState,
    client_id: str,
    client_secret: str,
    scopes: list[str],
    params: Mapping[str, str],
    button: str,
) -> oauth.TokenGrant:
    """Trade the callback's code for tokens; Google's refusal told as what to do about it."""
    try:
        return oauth.exchange_code(
            settings=settings,
            client_id=client_id,
            client_secret=client_secret,
            redirect_uri=consumed.row.redirect_uri,
            scopes=scopes,
            state=params["state"],
            code_verifier=consumed.code_verifier,
            code=params["code"],
        )
    except OAuthFlowError as exc:
        raise OAuthFlowError(
            exchange_error_message(exc, consumed.row.redirect_uri, button), reason=exc.reason
        ) from None


def consented_identity(
    *, settings: Settings, grant: oauth.TokenGrant, client_id: str, button: str, what: str
) -> str:
    """Who consented (the verified id token's e-mail), once the grant holds what keeps `what`
    working: a refresh token, and an id token saying who it is."""
    if not grant.refresh_token:
        raise OAuthFlowError(
            f"Google returned no refresh token, so {what} could not keep working after an "
            "hour. Nothing was stored: remove the app's access at "
            f"https://myaccount.google.com/permissions, then click {button} again.",
            reason="no_refresh_token",
        )
    if not grant.id_token:
        raise OAuthFlowError(
            "Google did not say who consented (no id token). Nothing was stored: authenticate "
            "again and keep the e-mail permission ticked.",
            reason="no_id_token",
        )
    claims = oauth.verify_id_token(settings=settings, token=grant.id_token, audience=client_id)
    return str(claims.get("email") or claims.get("sub") or "")
