"""Authenticate Instance: the OAuth consent flow for an instance, its callback, Disconnect."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlmodel import Session

from bss.crypto import Vault
from bss.errors import GoogleError, OAuthFlowError
from bss.gateway import (
    REQUIRED_SCOPES,
    ConsumedState,
    check_answer,
    consented_identity,
    exchange,
    oauth,
    peek_state,
    spend_state,
    start_consent,
)
from bss.instances.registry import store_oauth_grant
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
# The button the distributor clicks, as the flow's messages name it
BUTTON = "Authenticate Instance"

# What each required scope is for, in the words of Google's consent page and API library.
SCOPE_PURPOSES = {
    "https://www.googleapis.com/auth/apps.order": "Reseller API: manage customers and orders",
    "https://www.googleapis.com/auth/admin.directory.user": "Admin SDK Directory API: users",
    "https://www.googleapis.com/auth/apps.licensing": "Enterprise License Manager API: licenses",
    "https://www.googleapis.com/auth/gmail.send": "Gmail API: send e-mail as the admin",
}


@dataclass
class Outcome:
    """How an authorization ended, for the page that reports it."""

    ok: bool
    message: str
    reason: str = "ok"
    instance_id: int | None = None
    display: str = "popup"


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
    return start_consent(
        session,
        settings=settings,
        vault=vault,
        purpose=OAuthPurpose.INSTANCE,
        client_id=instance.client_id,
        client_secret=vault.decrypt(instance.client_secret_enc),
        scopes=REQUESTED_SCOPES,
        login_hint=instance.authenticated_as,
        user_id=user.id,
        browser_id=browser_id,
        request_base=request_base,
        display=display,
        instance_id=instance.id,
    )


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
        consumed = spend_state(
            session,
            vault=vault,
            params=params,
            purpose=OAuthPurpose.INSTANCE,
            user_id=user.id if user else None,
            browser_id=browser_id,
            button=BUTTON,
        )
        row = consumed.row
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
        check_answer(params, BUTTON)
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
    consumed: ConsumedState,
    params: Mapping[str, str],
) -> None:
    grant = exchange(
        settings=settings,
        consumed=consumed,
        client_id=instance.client_id,
        client_secret=vault.decrypt(instance.client_secret_enc or ""),
        scopes=REQUESTED_SCOPES,
        params=params,
        button=BUTTON,
    )
    missing = missing_scopes(grant.granted_scopes)
    if missing:
        raise OAuthFlowError(missing_scopes_message(missing), reason="scopes_missing")
    authenticated_as = consented_identity(
        settings=settings,
        grant=grant,
        client_id=instance.client_id,
        button=BUTTON,
        what="the instance",
    )
    store_oauth_grant(
        session,
        instance,
        vault=vault,
        refresh_token=grant.refresh_token or "",
        scopes=[s for s in grant.granted_scopes if s in REQUIRED_SCOPES],
        authenticated_as=authenticated_as,
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
