"""Check an instance end to end (the portal's Check button and `bss doctor`): the refresh, the
scopes, each API, reseller access; every failure says what to fix."""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from bss.crypto import Vault
from bss.errors import BssError, GoogleAuthorizationError, GoogleError
from bss.gateway import REQUIRED_SCOPES, Gateway, instance_credentials, oauth
from bss.instances.authenticate import SCOPE_PURPOSES
from bss.instances.registry import mark_needs_reauth
from bss.models import (
    Instance,
    InstanceHealth,
    InstanceMode,
    InstanceStatus,
    iso,
    saved_id,
    utcnow,
)
from bss.settings import Settings

CONSENT_SCREEN_URL = "https://console.cloud.google.com/apis/credentials/consent"
# An External consent screen left in "Testing" kills refresh tokens 7 days after consent.
TESTING_EXPIRY = timedelta(days=7)
TESTING_WINDOW = timedelta(hours=36)

# API → (title, Google service name, a harmless call).
API_PROBES: dict[str, tuple[str, str, str, Callable[[Any, str], Any]]] = {
    "reseller": (
        "Google Workspace Reseller API",
        "reseller.googleapis.com",
        "reseller.customers.get",
        lambda svc, domain: svc.customers().get(customerId=domain),
    ),
    "admin": (
        "Admin SDK API",
        "admin.googleapis.com",
        "directory.users.list",
        lambda svc, domain: svc.users().list(customer="my_customer", maxResults=1),
    ),
    "licensing": (
        "Enterprise License Manager API",
        "licensing.googleapis.com",
        "licensing.licenseAssignments.listForProduct",
        lambda svc, domain: svc.licenseAssignments().listForProduct(
            productId="Google-Apps", customerId=domain, maxResults=1
        ),
    ),
    "gmail": (
        "Gmail API",
        "gmail.googleapis.com",
        "gmail.users.messages.send",
        # A message without recipients: Gmail refuses it (400) after checking the API is
        # enabled and the scope granted, and nothing is sent.
        lambda svc, domain: (
            svc.users()
            .messages()
            .send(
                userId="me",
                body={"raw": base64.urlsafe_b64encode(b"Subject: bss doctor\r\n\r\n").decode()},
            )
        ),
    ),
}


@dataclass(frozen=True)
class CheckResult:
    """One line of a check: what was checked, PASS/FAIL, and what to do on FAIL."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None
    link: str | None = None


def _consent_screen_in_testing(instance: Instance, now: datetime) -> bool:
    if instance.authenticated_at is None:
        return False
    age = now - instance.authenticated_at
    return abs(age - TESTING_EXPIRY) <= TESTING_WINDOW


def _refresh_failure(instance: Instance, exc: GoogleError, now: datetime) -> CheckResult:
    reason = exc.reason or ""
    if reason == "invalid_grant" and _consent_screen_in_testing(instance, now):
        return CheckResult(
            "Token refresh",
            False,
            "Google answered invalid_grant about 7 days after the instance was authenticated.",
            fix="Your OAuth consent screen is External and still in 'Testing', where Google "
            "expires refresh tokens after 7 days. In Google Cloud console open APIs & Services "
            "> OAuth consent screen and click 'Publish app' (or make it Internal), then "
            "Re-authenticate the instance.",
            link=CONSENT_SCREEN_URL,
        )
    if reason == "invalid_grant":
        return CheckResult(
            "Token refresh",
            False,
            f"Google refused the refresh token (invalid_grant: {exc.message}).",
            fix="The grant was revoked or expired (password change, removed app access, "
            "6 months unused): Re-authenticate the instance.",
        )
    if reason in ("invalid_client", "unauthorized_client") and instance.mode == InstanceMode.OAUTH:
        return CheckResult(
            "Token refresh",
            False,
            f"Google refused the client credentials ({reason}).",
            fix="Check the instance's Client ID and Client Secret against the OAuth client in "
            "Google Cloud console (APIs & Services > Credentials).",
        )
    return CheckResult("Token refresh", False, oauth.describe(exc), fix=exc.hint)


def _activation_link(exc: GoogleError, service: str, instance: Instance) -> str:
    found = re.search(r"https://\S+?(?=\s|$)", exc.message or "")
    if found:
        return found.group(0).rstrip(".")
    project = instance.client_id.split("-", 1)[0] if instance.client_id else ""
    return f"https://console.cloud.google.com/apis/library/{service}?project={project}"


def _probe(gateway: Gateway, api: str, instance: Instance, domain: str) -> list[CheckResult]:
    title, service, method, call = API_PROBES[api]
    try:
        gateway.call(method, lambda svc: call(svc, domain), api=api)
        answered = None
    except GoogleError as exc:
        answered = exc
    if answered is not None and answered.reason == "accessNotConfigured":
        return [
            CheckResult(
                f"{title}",
                False,
                f"The {title} is not enabled in the Cloud project (accessNotConfigured).",
                fix=f"Enable the {title} in your Cloud project, wait a minute, then Check again.",
                link=_activation_link(answered, service, instance),
            )
        ]
    if isinstance(answered, GoogleAuthorizationError) or (
        answered is not None and answered.status is None
    ):
        return [CheckResult(title, False, oauth.describe(answered), fix=answered.hint)]
    results = [CheckResult(title, True, "enabled and answering")]
    if api == "reseller":
        if answered is not None and answered.status == 404:
            results.append(
                CheckResult("Reseller access", True, f"customers.get({domain}) answered 404: free")
            )
        elif answered is None:
            results.append(
                CheckResult("Reseller access", True, "customers.get answered with a customer")
            )
        else:
            results.append(
                CheckResult(
                    "Reseller access",
                    False,
                    f"customers.get on an unused domain answered {oauth.describe(answered)}",
                    fix="Authenticate as a super admin of your reseller domain, and check that "
                    "the Reseller API is allowed for your reseller account in the Partner Sales "
                    "Console.",
                )
            )
    return results


def check_instance(
    session: Session,
    *,
    settings: Settings,
    vault: Vault,
    instance: Instance,
    now: datetime | None = None,
) -> list[CheckResult]:
    """Run every check, record the outcome on the instance's health; the caller commits."""
    now = now or utcnow()
    results: list[CheckResult] = []
    expires_at = None
    try:
        credentials = instance_credentials(instance, vault=vault, settings=settings)
        refreshed = oauth.refresh(credentials)
    except GoogleError as exc:
        if exc.reason in ("not_authenticated", "not_configured"):
            results.append(CheckResult("Credentials", False, exc.message, fix=exc.hint))
            _record(session, instance, results, expires_at=None, now=now)
            return results
        results.append(_refresh_failure(instance, exc, now))
        if isinstance(exc, GoogleAuthorizationError) and exc.reason in (
            "invalid_grant",
            "unauthorized_client",
            "invalid_client",
        ):
            # Billing hears of it as when a job finds out (the sweep sends the webhook)
            mark_needs_reauth(session, instance.id, exc)
            instance.last_error = results[-1].detail
        _record(session, instance, results, expires_at=None, now=now)
        return results
    except BssError as exc:
        results.append(CheckResult("Credentials", False, exc.message, fix=exc.hint))
        _record(session, instance, results, expires_at=None, now=now)
        return results
    expires_at = refreshed.expires_at
    instance.last_refresh_at = now
    results.append(CheckResult("Token refresh", True, "a fresh access token was issued"))
    granted = set(refreshed.scopes or instance.granted_scopes.split())
    if instance.mode == InstanceMode.SERVICE_ACCOUNT:
        granted = set(REQUIRED_SCOPES)  # the token was issued for all of them at once
    for scope in REQUIRED_SCOPES:
        ok = scope in granted
        results.append(
            CheckResult(
                f"Scope {scope}",
                ok,
                "granted" if ok else f"not granted ({SCOPE_PURPOSES[scope]})",
                fix=None if ok else "Re-authenticate and tick every box on Google's consent page.",
            )
        )
    gateway = Gateway(settings=settings, credentials=credentials)
    domain = f"bss-check-{secrets.token_hex(6)}.example"
    for api in API_PROBES:
        results.extend(_probe(gateway, api, instance, domain))
    _record(session, instance, results, expires_at=expires_at, now=now)
    return results


def notifications_check(instance: Instance) -> CheckResult:
    """Google's notifications for the instance, from what registration and the last
    reconciliation recorded on it (bss.events writes these fields)."""
    name = "Google notifications"
    ref = instance.name
    last = instance.last_reconcile or {}
    reconciled = (
        f"; last reconciliation {iso(instance.last_reconciled_at)}"
        if instance.last_reconciled_at
        else "; not reconciled yet"
    )
    if instance.events_error:
        return CheckResult(
            name,
            False,
            f"{instance.events_mode}: {instance.events_error}",
            fix=f"Fix what Google says, then run `bss instances events {ref} "
            f"{instance.events_mode if instance.events_mode != 'off' else 'push'}` again; "
            "meanwhile the reconciliation finds what changes.",
        )
    if instance.events_mode not in ("push", "pull") or not instance.events_subscription:
        return CheckResult(
            name,
            True,
            f"not registered (off): changes made at Google are found by the reconciliation "
            f"only{reconciled}. Register with `bss instances events {ref} push` (or pull).",
        )
    heard = iso(instance.last_event_at) if instance.last_event_at else "none yet"
    detail = (
        f"{instance.events_mode} since {iso(instance.events_registered_at)} through "
        f"{instance.events_subscription}; last notification {heard}{reconciled}"
    )
    missed = int(last.get("missed") or 0) if isinstance(last, dict) else 0
    if missed:
        return CheckResult(
            name,
            False,
            f"{detail}: it found {missed} change(s) no notification had told us.",
            fix="Notifications are not arriving: for push, check that Google can reach the push "
            "URL (BSS_EVENTS_PUSH_URL or the public base URL); or switch to pull.",
        )
    return CheckResult(name, True, detail)


def _record(
    session: Session,
    instance: Instance,
    results: list[CheckResult],
    *,
    expires_at: datetime | None,
    now: datetime,
) -> None:
    health = session.get(InstanceHealth, instance.id) or InstanceHealth(
        instance_id=saved_id(instance)
    )
    connected = all(r.ok for r in results)
    # Shown with the checks, but the connection's health does not hang on it.
    results.append(notifications_check(instance))
    health.checked_at = now
    health.ok = connected
    health.access_token_expires_at = expires_at
    health.results = [asdict(r) for r in results]
    session.add(health)
    if health.ok and instance.status == InstanceStatus.AUTHENTICATED:
        instance.last_error = None
    instance.updated_at = now
    session.add(instance)
