"""Instances: a distributor's connections to Google, and their credentials."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, select

from bss.crypto import Vault
from bss.errors import NotFound, ValidationFailed
from bss.models import Distributor, Instance, InstanceMode, InstanceStatus, utcnow
from bss.runner import resume_waiting_jobs

# The path distributors already register as the Authorized Redirect URI for this job.
OAUTH_CALLBACK_PATH = "/Setup/SystemOptions/CloudAppsConfiguration.aspx/AuthenticateGoogleWorkspace"


def redirect_uris(base_urls: Iterable[str]) -> list[str]:
    """The Authorized Redirect URI for each public base URL the portal is reachable under."""
    return [base.rstrip("/") + OAUTH_CALLBACK_PATH for base in base_urls]


def get_instance(session: Session, *, distributor_id: int | None, name: str) -> Instance:
    """The distributor's instance called `name`, or NotFound."""
    found = session.exec(
        select(Instance).where(Instance.distributor_id == distributor_id, Instance.name == name)
    ).first()
    if found is None:
        raise NotFound(f"No instance named {name!r}.")
    return found


def create_instance(
    session: Session,
    *,
    vault: Vault,
    distributor: Distributor,
    name: str,
    client_id: str,
    client_secret: str,
    mode: str = InstanceMode.OAUTH,
) -> Instance:
    """A new instance; its client secret is stored encrypted."""
    problems = []
    if not name.strip():
        problems.append({"field": "name", "problem": "required"})
    if mode == InstanceMode.OAUTH and not client_id.strip():
        problems.append({"field": "client_id", "problem": "required"})
    if mode == InstanceMode.OAUTH and not client_secret.strip():
        problems.append({"field": "client_secret", "problem": "required"})
    if problems:
        raise ValidationFailed("The instance is incomplete.", details=problems)
    instance = Instance(
        distributor_id=distributor.id,  # type: ignore[arg-type]
        name=name.strip(),
        mode=mode,
        client_id=client_id.strip(),
        client_secret_enc=vault.encrypt(client_secret.strip()) if client_secret else None,
    )
    session.add(instance)
    session.flush()
    return instance


def store_oauth_grant(
    session: Session,
    instance: Instance,
    *,
    vault: Vault,
    refresh_token: str,
    scopes: Iterable[str],
    authenticated_as: str | None,
) -> list[str]:
    """Record a successful consent: the refresh token (encrypted), who, when, which scopes.

    Jobs that were waiting for this instance's re-authentication are queued again; their ids are
    returned so the caller can send their messages after commit.
    """
    now = utcnow()
    instance.refresh_token_enc = vault.encrypt(refresh_token)
    instance.granted_scopes = " ".join(sorted(set(scopes)))
    instance.authenticated_as = authenticated_as
    instance.authenticated_at = instance.last_refresh_at = instance.updated_at = now
    instance.status = InstanceStatus.AUTHENTICATED
    instance.last_error = None
    session.add(instance)
    return resume_waiting_jobs(session, instance.id)  # type: ignore[arg-type]
