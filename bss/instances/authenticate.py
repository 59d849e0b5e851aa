"""Authenticate Instance: the OAuth consent flow for an instance, its callback, Disconnect."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlmodel import Session

from bss.crypto import Vault
from bss.errors import GoogleError, OAuthFlowError
from bss.gateway import REQUIRED_SCOPES, consume_state, oauth, peek_state, save_state
from bss.instances.registry import OAUTH_CALLBACK_PATH, redirect_uris, store_oauth_grant
from bss.models import (
    Instance,
    InstanceHealth,
    InstanceMode,
    InstanceStatus,
    OAuthPurpose,
    User,
    saved_id,
    utcnow,
)
from bss.settings import Settings

# Who consented comes from the id token, hence openid + email beside the work scopes.
REQUESTED_SCOPES = [*REQUIRED_SCOPES, *oauth.OPENID_SCOPES]

# What each required scope is for, in the words of Google's consent page and API library.
SCOPE_PURPOSES = {
    "https://www.googleapis.com/auth/apps.order": "Reseller API: manage customers and orders",
    "https://www.googleapis.com/auth/admin.directory.user": "Admin SDK Directory API: users",
    "https://www.googleapis.com/auth/apps.licensing": "Enterprise License Manager API: licenses",
    "https://www.googleapis.com/auth/gmail.send": "Gmail API: send e-mail as the admin",
}

# Google's `error` on the callback, in the distributor's words.
CALLBACK_ERRORS = {
    "access_denied": "You cancelled on Google's consent page (access_denied), or ticked no "
    "permission. Nothing was changed: click Authenticate Instance again and choose Allow.",
    "admin_policy_enforced": "Your Workspace administrator blocks this app "
    "(admin_policy_enforced): allow the OAuth client under Security > API controls > App access "
    "control in the Admin console, then try again.",
    "org_internal": "The OAuth consent screen is Internal and the account you chose is outside "
    "the Cloud project's organization (org_internal): sign in with an account of that "
    "organization, or make the consent screen External.",
    "invalid_client": "Google does not know this Client ID (invalid_client): copy the Client ID "
    "of your OAuth web client from Google Cloud console (APIs & Services > Credentials).",
    "unsupported_response_type": "Google refused the request (unsupported_response_type).",
}


@dataclass
class Outcome:
    """How an authorization ended, for the page that reports it."""

    ok: bool
    message: str
    reason: str = "ok"
    instance_id: int | None = None
    display: str = "popup"


def callback_redirect_uri(settings: Settings, request_base: str | None) -> str:
    """The Authorized Redirect URI for the host the user is on (so the session cookie comes
    back with the callback), or the first configured one."""
    uris = redirect_uris(settings.base_urls)
    if request_base:
        wanted = request_base.rstrip("/") + OAUTH_CALLBACK_PATH
        if wanted in uris:
            return wanted
    return uris[0]


def start_authentication(
    session: Session,
    *,
    settings: Settings,
    vault: Vault,
    instance: Instance,
    user: User,
    browser_id: str,
    request_base: str | None = None,
    display: str = "popup",
) -> oauth.AuthorizationRequest:
    """Google's authorization URL for `instance` and its state (saved); the caller commits."""
    if instance.mode != InstanceMode.OAUTH:
        raise OAuthFlowError(
            "This instance uses a service account: upload its key instead of authenticating.",
            reason="wrong_mode",
        )
    if not instance.client_id or not instance.client_secret_enc:
        raise OAuthFlowError(
            "Enter the instance's Client ID and Client Secret first.", reason="not_configured"
        )
    redirect_uri = callback_redirect_uri(settings, request_base)
    request = oauth.authorization_request(
        settings=settings,
        client_id=instance.client_id,
        client_secret=vault.decrypt(instance.client_secret_enc),
        redirect_uri=redirect_uri,
        scopes=REQUESTED_SCOPES,
        login_hint=instance.authenticated_as,
    )
    save_state(
        session,
        vault=vault,
        purpose=OAuthPurpose.INSTANCE,
        state=request.state,
        code_verifier=request.code_verifier,
        browser_id=browser_id,
        redirect_uri=redirect_uri,
        user_id=user.id,
        instance_id=instance.id,
        client_id=instance.client_id,
        display=display,
    )
    return request


def missing_scopes(granted: Iterable[str]) -> list[str]:
    """The required scopes not among `granted`."""
    have = set(granted)
    return [s for s in REQUIRED_SCOPES if s not in have]


def missing_scopes_message(missing: list[str]) -> str:
    names = "; ".join(f"{SCOPE_PURPOSES.get(s, s)} ({s})" for s in missing)
    return (
        f"Google did not grant every permission the instance needs. Missing: {names}. Nothing "
        "was stored: click Authenticate Instance again and tick every box on Google's consent "
        "page."
    )


def exchange_error_message(exc: OAuthFlowError, redirect_uri: str) -> str:
    """What to do about Google refusing the code exchange."""
    if exc.reason in ("invalid_client", "unauthorized_client"):
        return (
            f"Google refused the instance's client credentials ({exc.reason}): check that the "
            "Client Secret saved on this instance is the current secret of the OAuth client in "
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
            "expired or been used already: click Authenticate Instance again."
        )
    if exc.reason == "token_endpoint_unreachable":
        return f"{exc.message} Nothing was changed: try again in a minute."
    return f"Google refused the code exchange ({exc.reason}: {exc.message}). Nothing was changed."


def finish_authentication(
    session: Session,
    *,
    settings: Settings,
    vault: Vault,
    user: User | None,
    browser_id: str | None,
    params: Mapping[str, str],
    started_instances: Mapping[str, int] | None = None,
) -> Outcome:
    """Check and complete the callback of an instance authorization.

    `started_instances` maps state digests to the instance this browser started them for.
    Every failure returns an Outcome with a specific message and stores no credential.
    """
    row = peek_state(session, params.get("state"))
    outcome = Outcome(
        ok=False,
        message="",
        instance_id=row.instance_id if row else None,
        display=row.display if row else "popup",
    )
    try:
        consumed = consume_state(
            session,
            vault=vault,
            state=params.get("state"),
            purpose=OAuthPurpose.INSTANCE,
            browser_id=browser_id,
        )
        session.commit()  # spent for every process before Google is contacted
        row = consumed.row
        if user is None:
            raise OAuthFlowError(
                "Your portal session ended before Google answered. Nothing was changed: sign in "
                "again and click Authenticate Instance.",
                reason="signed_out",
            )
        if row.user_id != user.id:
            raise OAuthFlowError(
                "This authorization was started by another user: the person who clicked "
                "Authenticate Instance must finish it, signed in as themselves. Nothing was "
                "changed.",
                reason="state_other_user",
            )
        instance = session.get(Instance, row.instance_id)
        expected = (started_instances or {}).get(row.state_hash)
        if (
            instance is None
            or expected != row.instance_id
            or instance.client_id != row.client_id
            or instance.mode != InstanceMode.OAUTH
        ):
            raise OAuthFlowError(
                "This authorization was started for another instance (or before the instance's "
                "Client ID was changed). Nothing was changed: click Authenticate Instance again "
                "on the instance you want to connect.",
                reason="state_other_instance",
            )
        error = params.get("error")
        if error:
            raise OAuthFlowError(
                CALLBACK_ERRORS.get(
                    error, f"Google answered with an error ({error}). Nothing was changed."
                ),
                reason=error,
            )
        if not params.get("code"):
            raise OAuthFlowError(
                "Google's answer carried no authorization code. Nothing was changed: try again.",
                reason="code_missing",
            )
        _complete(session, settings, vault, instance, consumed, params)
    except OAuthFlowError as exc:
        session.rollback()
        outcome.reason, outcome.message = exc.reason, exc.message
        return outcome
    outcome.ok, outcome.reason = True, "ok"
    outcome.message = f"Instance {instance.name!r} is authenticated as {instance.authenticated_as}."
    return outcome


def _complete(
    session: Session,
    settings: Settings,
    vault: Vault,
    instance: Instance,
    consumed,  # noqa: ANN001 - ConsumedState
    params: Mapping[str, str],
) -> None:
    row = consumed.row
    try:
        grant = oauth.exchange_code(
            settings=settings,
            client_id=instance.client_id,
            client_secret=vault.decrypt(instance.client_secret_enc or ""),
            redirect_uri=row.redirect_uri,
            scopes=REQUESTED_SCOPES,
            state=params["state"],
            code_verifier=consumed.code_verifier,
            code=params["code"],
        )
    except OAuthFlowError as exc:
        raise OAuthFlowError(
            exchange_error_message(exc, row.redirect_uri), reason=exc.reason
        ) from None
    missing = missing_scopes(grant.granted_scopes)
    if missing:
        raise OAuthFlowError(missing_scopes_message(missing), reason="scopes_missing")
    if not grant.refresh_token:
        raise OAuthFlowError(
            "Google returned no refresh token, so the instance could not keep working after an "
            "hour. Nothing was stored: remove the app's access at "
            "https://myaccount.google.com/permissions, then click Authenticate Instance again.",
            reason="no_refresh_token",
        )
    if not grant.id_token:
        raise OAuthFlowError(
            "Google did not say who consented (no id token). Nothing was stored: authenticate "
            "again and keep the e-mail permission ticked.",
            reason="no_id_token",
        )
    claims = oauth.verify_id_token(
        settings=settings, token=grant.id_token, audience=instance.client_id
    )
    store_oauth_grant(
        session,
        instance,
        vault=vault,
        refresh_token=grant.refresh_token,
        scopes=[s for s in grant.granted_scopes if s in REQUIRED_SCOPES],
        authenticated_as=str(claims.get("email") or claims.get("sub") or ""),
        refresh_token_expires_at=grant.refresh_token_expires_at,
    )
    health = session.get(InstanceHealth, instance.id) or InstanceHealth(
        instance_id=saved_id(instance)
    )
    health.checked_at, health.ok = utcnow(), True
    health.access_token_expires_at = grant.expires_at
    health.results = []
    session.add(health)
    session.commit()


def disconnect(session: Session, *, settings: Settings, vault: Vault, instance: Instance) -> str:
    """Revoke the instance's grant at Google and delete its tokens; the caller commits."""
    note = ""
    if instance.mode == InstanceMode.OAUTH and instance.refresh_token_enc:
        try:
            revoked = oauth.revoke_token(
                settings=settings, token=vault.decrypt(instance.refresh_token_enc)
            )
            note = (
                " Google revoked its access."
                if revoked
                else " Google had already revoked or expired the token."
            )
        except GoogleError as exc:
            note = (
                f" Google could not be reached to revoke the token ({exc.message}); revoke the "
                "app at https://myaccount.google.com/permissions to be sure."
            )
    elif instance.mode == InstanceMode.SERVICE_ACCOUNT and instance.service_account_key_enc:
        note = (
            " The service-account key is deleted here; delete it in Google Cloud console too "
            "(IAM & Admin > Service accounts > Keys)."
        )
    instance.refresh_token_enc = None
    instance.service_account_key_enc = None
    instance.granted_scopes = ""
    instance.authenticated_as = None
    instance.authenticated_at = None
    instance.status = InstanceStatus.NOT_AUTHENTICATED
    instance.updated_at = utcnow()
    session.add(instance)
    health = session.get(InstanceHealth, instance.id)
    if health is not None:
        session.delete(health)
    return f"Instance {instance.name!r} is disconnected.{note}"
