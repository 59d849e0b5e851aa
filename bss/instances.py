"""Instances: a distributor's connections to Google, and their credentials."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, select

from bss.crypto import Vault
from bss.errors import NotFound, ValidationFailed
from bss.jobs import resume_waiting_jobs
from bss.models import Distributor, Instance, InstanceMode, InstanceStatus, saved_id, utcnow

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
        distributor_id=saved_id(distributor),
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
    return resume_waiting_jobs(session, saved_id(instance))


def _check_name(
    session: Session, *, distributor_id: int, name: str, instance_id: int | None
) -> None:
    taken = session.exec(
        select(Instance).where(Instance.distributor_id == distributor_id, Instance.name == name)
    ).first()
    if taken is not None and taken.id != instance_id:
        raise ValidationFailed(
            f"An instance named {name!r} exists already.",
            details=[{"field": "name", "problem": "taken"}],
        )


def add_instance(
    session: Session,
    *,
    vault: Vault,
    distributor: Distributor,
    name: str,
    client_id: str,
    client_secret: str,
    mode: str,
) -> Instance:
    """A new instance from the portal's form: like create_instance, with a unique name."""
    if mode not in tuple(InstanceMode):
        raise ValidationFailed(
            f"Unknown mode {mode!r}.", details=[{"field": "mode", "problem": "unknown"}]
        )
    _check_name(session, distributor_id=saved_id(distributor), name=name.strip(), instance_id=None)
    return create_instance(
        session,
        vault=vault,
        distributor=distributor,
        name=name,
        client_id=client_id,
        client_secret=client_secret,
        mode=mode,
    )


def update_instance(
    session: Session,
    instance: Instance,
    *,
    vault: Vault,
    name: str,
    client_id: str,
    client_secret: str | None,
    mode: str,
) -> list[str]:
    """Edit an instance; an empty `client_secret` keeps the stored one. Returns notes for the
    user: a new Client ID (or mode) invalidates the grant, which then needs authenticating."""
    name, client_id, client_secret = name.strip(), client_id.strip(), (client_secret or "").strip()
    problems = []
    if not name:
        problems.append({"field": "name", "problem": "required"})
    if mode not in tuple(InstanceMode):
        problems.append({"field": "mode", "problem": "unknown"})
    if mode == InstanceMode.OAUTH and not client_id:
        problems.append({"field": "client_id", "problem": "required"})
    if mode == InstanceMode.OAUTH and not client_secret and not instance.client_secret_enc:
        problems.append({"field": "client_secret", "problem": "required"})
    if problems:
        raise ValidationFailed("The instance is incomplete.", details=problems)
    _check_name(session, distributor_id=instance.distributor_id, name=name, instance_id=instance.id)
    notes = []
    if client_id != instance.client_id or mode != instance.mode:
        # A refresh token belongs to the client that obtained it.
        if instance.refresh_token_enc or instance.status == InstanceStatus.AUTHENTICATED:
            notes.append("The Client ID or mode changed: authenticate the instance again.")
        instance.refresh_token_enc = None
        instance.granted_scopes = ""
        instance.authenticated_as = None
        instance.authenticated_at = None
        if instance.status != InstanceStatus.DISABLED:
            instance.status = InstanceStatus.NOT_AUTHENTICATED
    instance.name, instance.client_id, instance.mode = name, client_id, mode
    if client_secret:
        instance.client_secret_enc = vault.encrypt(client_secret)
        notes.append("The new Client Secret is stored.")
    instance.updated_at = utcnow()
    session.add(instance)
    return notes


def mark_service_account_verified(
    session: Session, instance: Instance, *, scopes: Iterable[str]
) -> list[str]:
    """A delegated service account obtained a token for every required scope: the instance
    works; jobs waiting for it are queued again (their ids returned, to send after commit)."""
    now = utcnow()
    instance.granted_scopes = " ".join(sorted(set(scopes)))
    instance.authenticated_as = instance.delegated_admin
    instance.authenticated_at = instance.last_refresh_at = instance.updated_at = now
    instance.status = InstanceStatus.AUTHENTICATED
    instance.last_error = None
    session.add(instance)
    return resume_waiting_jobs(session, saved_id(instance))


def set_enabled(session: Session, instance: Instance, *, enabled: bool) -> list[str]:
    """Disable an instance (its jobs wait, nothing is sent to Google) or enable it again.

    Enabling puts it back to authenticated when it holds credentials (a dead grant shows on its
    next call), and returns the ids of the jobs that waited, to send after commit.
    """
    instance.updated_at = utcnow()
    session.add(instance)
    if not enabled:
        instance.status = InstanceStatus.DISABLED
        return []
    if instance.status != InstanceStatus.DISABLED:
        return []
    if instance.mode == InstanceMode.SERVICE_ACCOUNT:
        works = bool(instance.service_account_key_enc and instance.authenticated_at)
    else:
        works = bool(instance.refresh_token_enc)
    instance.status = InstanceStatus.AUTHENTICATED if works else InstanceStatus.NOT_AUTHENTICATED
    return resume_waiting_jobs(session, saved_id(instance)) if works else []


def find_instance(session: Session, ref: str) -> Instance:
    """The instance named by `ref`: `DISTRIBUTOR/NAME`, a name used by one distributor only,
    or an id."""
    from bss.tenancy import distributor_by_slug

    if "/" in ref:
        slug, name = ref.split("/", 1)
        return get_instance(
            session, distributor_id=distributor_by_slug(session, slug).id, name=name
        )
    if ref.isdigit() and (by_id := session.get(Instance, int(ref))) is not None:
        return by_id
    named = session.exec(select(Instance).where(Instance.name == ref)).all()
    if len(named) == 1:
        return named[0]
    if named:
        raise NotFound(f"Several distributors have an instance {ref!r}: write DISTRIBUTOR/{ref}.")
    raise NotFound(f"No instance {ref!r}.")
