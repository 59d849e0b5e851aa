"""Service-account instances: the JSON key, the admin to impersonate, and verification of the
domain-wide delegation, one scope at a time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from bss.accounts import normalize_email
from bss.crypto import Vault
from bss.errors import GoogleError, ValidationFailed
from bss.gateway import REQUIRED_SCOPES, KeySummary, oauth, parse_key, summarize_key
from bss.instances.registry import mark_service_account_verified
from bss.models import (
    Instance,
    InstanceHealth,
    InstanceMode,
    InstanceStatus,
    saved_id,
    utcnow,
)
from bss.settings import Settings


def key_summary(vault: Vault, instance: Instance) -> KeySummary | None:
    """The stored key's public identifiers, or None without a key."""
    if not instance.service_account_key_enc:
        return None
    return summarize_key(json.loads(vault.decrypt(instance.service_account_key_enc)))


def configure_service_account(
    session: Session,
    instance: Instance,
    *,
    vault: Vault,
    key_file: bytes | None,
    delegated_admin: str,
) -> list[str]:
    """Store a new key (replacing the old one: key rotation) and the admin to impersonate.
    Returns notes for the user; the caller commits."""
    if instance.mode != InstanceMode.SERVICE_ACCOUNT:
        raise ValidationFailed("Switch the instance to service-account mode first.")
    notes = []
    admin = normalize_email(delegated_admin) if delegated_admin.strip() else ""
    if not admin:
        raise ValidationFailed(
            "Name the reseller admin the service account acts as (an e-mail address).",
            details=[{"field": "delegated_admin", "problem": "required"}],
        )
    if not key_file and not instance.service_account_key_enc:
        raise ValidationFailed(
            "Upload the service account's JSON key.",
            details=[{"field": "key_file", "problem": "required"}],
        )
    previous = key_summary(vault, instance)
    if key_file:
        key = parse_key(key_file)
        instance.service_account_key_enc = vault.encrypt(json.dumps(key))
        notes.append(
            f"Key {key.get('private_key_id') or '(no id)'} of {key['client_email']} is stored"
            + (" and replaces the previous key." if previous else ".")
        )
        if previous is None or previous.client_id != key["client_id"]:
            _unverified(instance)
    if admin != instance.delegated_admin:
        instance.delegated_admin = admin
        notes.append(f"The service account will act as {admin}.")
        _unverified(instance)
    instance.updated_at = utcnow()
    session.add(instance)
    if instance.status != InstanceStatus.AUTHENTICATED:
        notes.append("Click Verify delegation to check it works.")
    return notes


def _unverified(instance: Instance) -> None:
    if instance.status != InstanceStatus.DISABLED:
        instance.status = InstanceStatus.NOT_AUTHENTICATED
    instance.granted_scopes = ""
    instance.authenticated_as = None


@dataclass(frozen=True)
class ScopeResult:
    """Whether the delegation grants one scope."""

    scope: str
    ok: bool
    detail: str


def verify_service_account(
    session: Session, *, settings: Settings, vault: Vault, instance: Instance
) -> list[ScopeResult]:
    """Obtain a token for each required scope as the delegated admin: PASS/FAIL per scope.
    When all pass the instance is authenticated."""
    if not instance.service_account_key_enc or not instance.delegated_admin:
        raise ValidationFailed("Upload the key and name the admin to impersonate first.")
    key = json.loads(vault.decrypt(instance.service_account_key_enc))
    results = []
    expiry = None
    for scope in REQUIRED_SCOPES:
        try:
            token = oauth.service_account_token(
                settings=settings, key=key, subject=instance.delegated_admin, scopes=[scope]
            )
            expiry = token.expires_at
            results.append(ScopeResult(scope, True, "a token was issued"))
        except GoogleError as exc:
            results.append(ScopeResult(scope, False, _delegation_problem(exc, key, scope)))
    ok = all(r.ok for r in results)
    if ok:
        mark_service_account_verified(session, instance, scopes=REQUIRED_SCOPES)
    else:
        instance.last_error = "Domain-wide delegation is incomplete."
        session.add(instance)
    health = session.get(InstanceHealth, instance.id) or InstanceHealth(
        instance_id=saved_id(instance)
    )
    health.checked_at, health.ok = utcnow(), ok
    health.access_token_expires_at = expiry if ok else None
    health.results = [
        {"name": f"Delegation of {r.scope}", "ok": r.ok, "detail": r.detail} for r in results
    ]
    session.add(health)
    return results


def _delegation_problem(exc: GoogleError, key: dict[str, Any], scope: str) -> str:
    if exc.reason == "unauthorized_client":
        return (
            f"not delegated: in the Admin console (Security > API controls > Domain-wide "
            f"delegation) give client ID {key.get('client_id')} the scope {scope}"
        )
    if exc.reason == "invalid_grant":
        return (
            f"Google refused the key or the admin ({exc.message}): check the admin's e-mail "
            "address and that this key has not been deleted in Cloud console"
        )
    return oauth.describe(exc)
