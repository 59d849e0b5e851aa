"""The instance registry: a distributor's connections to Google, their credentials and status."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, select

from bss.accounts import distributor_by_slug
from bss.crypto import Vault
from bss.errors import GoogleError, NotFound, ValidationFailed
from bss.instances.fields import client_id_problem, name_problem
from bss.models import Distributor, Instance, InstanceMode, InstanceStatus, saved_id, utcnow
from bss.notify import instance_needs_reauth, instance_recovered, record_event


def get_instance(session: Session, *, distributor_id: int | None, name: str) -> Instance:
    """The distributor's instance called `name`, or NotFound."""
    found = session.exec(
        select(Instance).where(Instance.distributor_id == distributor_id, Instance.name == name)
    ).first()
    if found is None:
        raise NotFound(f"No instance named {name!r}.")
    return found


def instance_problems(
    session: Session,
    *,
    distributor_id: int,
    name: str,
    client_id: str,
    has_client_secret: bool,
    mode: str,
    instance_id: int | None = None,
) -> list[dict[str, str]]:
    """Every field of an instance that cannot be saved as given, with why (empty: it can)."""
    problems = []
    if problem := name_problem(name):
        problems.append({"field": "name", "problem": problem})
    elif _name_taken(session, distributor_id=distributor_id, name=name, instance_id=instance_id):
        problems.append(
            {
                "field": "name",
                "problem": f"this distributor has an instance named {name!r} already; "
                "choose another name.",
            }
        )
    if mode not in tuple(InstanceMode):
        modes = " or ".join(repr(m.value) for m in InstanceMode)
        problems.append({"field": "mode", "problem": f"{mode!r} is not a mode: use {modes}."})
    elif mode == InstanceMode.OAUTH:
        if problem := client_id_problem(client_id):
            problems.append({"field": "client_id", "problem": problem})
        if not has_client_secret:
            problems.append({"field": "client_secret", "problem": "required."})
    return problems


def _refuse(problems: list[dict[str, str]]) -> None:
    if problems:
        listed = " ".join(f"{p['field']}: {p['problem']}" for p in problems)
        raise ValidationFailed(f"The instance was not saved. {listed}", details=problems)


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
    """A new instance, refused (ValidationFailed, every bad field listed) unless its name is a
    free slug and, in OAuth mode, its Client ID looks like Google's; the secret is encrypted."""
    name, client_id, client_secret = name.strip(), client_id.strip(), client_secret.strip()
    _refuse(
        instance_problems(
            session,
            distributor_id=saved_id(distributor),
            name=name,
            client_id=client_id,
            has_client_secret=bool(client_secret),
            mode=mode,
        )
    )
    instance = Instance(
        distributor_id=saved_id(distributor),
        name=name,
        mode=mode,
        client_id=client_id,
        client_secret_enc=vault.encrypt(client_secret) if client_secret else None,
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
    refresh_token_expires_at: datetime | None = None,
) -> None:
    """Record a successful consent: the refresh token (encrypted), who, when, which scopes,
    and until when the refresh token works when Google said (None: no known end).

    The instance is authenticated: the jobs that waited for it are the jobs wing's to resume.
    """
    now = utcnow()
    instance.refresh_token_enc = vault.encrypt(refresh_token)
    instance.granted_scopes = " ".join(sorted(set(scopes)))
    instance.authenticated_as = authenticated_as
    instance.refresh_token_expires_at = refresh_token_expires_at
    instance.authenticated_at = instance.last_refresh_at = instance.updated_at = now
    instance.status = InstanceStatus.AUTHENTICATED
    instance.last_error = None
    session.add(instance)
    instance_recovered(session, instance, new_grant=True)


def _name_taken(
    session: Session, *, distributor_id: int, name: str, instance_id: int | None
) -> bool:
    taken = session.exec(
        select(Instance).where(Instance.distributor_id == distributor_id, Instance.name == name)
    ).first()
    return taken is not None and taken.id != instance_id


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
    _refuse(
        instance_problems(
            session,
            distributor_id=instance.distributor_id,
            name=name,
            client_id=client_id,
            has_client_secret=bool(client_secret or instance.client_secret_enc),
            mode=mode,
            instance_id=instance.id,
        )
    )
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
) -> None:
    """A delegated service account obtained a token for every required scope: the instance
    works (and the jobs that waited for it may resume)."""
    now = utcnow()
    instance.granted_scopes = " ".join(sorted(set(scopes)))
    instance.authenticated_as = instance.delegated_admin
    instance.authenticated_at = instance.last_refresh_at = instance.updated_at = now
    instance.status = InstanceStatus.AUTHENTICATED
    instance.last_error = None
    session.add(instance)
    instance_recovered(session, instance, new_grant=True)


def set_enabled(session: Session, instance: Instance, *, enabled: bool) -> None:
    """Disable an instance (its jobs wait, nothing is sent to Google) or enable it again.

    Enabling puts it back to authenticated when it holds credentials (a dead grant shows on its
    next call); then the jobs that waited for it may resume.
    """
    instance.updated_at = utcnow()
    session.add(instance)
    if not enabled:
        instance.status = InstanceStatus.DISABLED
        return
    if instance.status != InstanceStatus.DISABLED:
        return
    if instance.mode == InstanceMode.SERVICE_ACCOUNT:
        works = bool(instance.service_account_key_enc and instance.authenticated_at)
    else:
        works = bool(instance.refresh_token_enc)
    instance.status = InstanceStatus.AUTHENTICATED if works else InstanceStatus.NOT_AUTHENTICATED
    if works:  # a dead grant shows again on its next call, and is told again
        instance_recovered(session, instance, new_grant=False)


def mark_needs_reauth(session: Session, instance_id: int | None, exc: GoogleError) -> str | None:
    """Google refused the instance's credentials: it needs re-authentication, and billing is told
    (once, by the first job that finds out). The webhook delivery's id, to send after commit."""
    instance = session.exec(
        select(Instance).where(Instance.id == instance_id).with_for_update()
    ).first()
    if instance is None or instance.status != InstanceStatus.AUTHENTICATED:
        return None
    instance.status = InstanceStatus.NEEDS_REAUTH
    instance.last_error = f"{exc.reason}: {exc.message}"
    instance.updated_at = utcnow()
    session.add(instance)
    # One alert mailed to the distributor's recipients, however many jobs find out.
    instance_needs_reauth(session, instance, why=exc.message)
    delivery = record_event(
        session,
        distributor_id=instance.distributor_id,
        event="instance.needs_reauth",
        data={
            "instance": {
                "name": instance.name,
                "status": instance.status,
                "last_error": instance.last_error,
            }
        },
        instance_id=instance.id,
    )
    return delivery.id if delivery else None


def find_instance(session: Session, ref: str) -> Instance:
    """The instance named by `ref`: `DISTRIBUTOR/NAME`, a name used by one distributor only,
    or an id."""
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
