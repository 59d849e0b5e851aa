"""`bss distributors|instances|users|api-keys|webhooks`: onboarding and looking things up from a
shell, for operators who script. Every `list` and `show` prints a table, or JSON with --json.
Nothing secret is ever printed but what is shown once on purpose (a new API key, a new secret)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from sqlmodel import Session, col, func, select

from bss.accounts import (
    create_api_key,
    create_distributor,
    create_user,
    distributor_by_slug,
    list_api_keys,
    revoke_api_key,
)
from bss.crypto import vault_from_settings
from bss.db import session_scope
from bss.errors import BssError
from bss.gateway import instance_limits
from bss.instances import (
    configure_service_account,
    create_instance,
    find_instance,
    redirect_uris,
)
from bss.jobs import fair_share
from bss.models import ApiKey, Distributor, Instance, InstanceMode, User, iso
from bss.notify import configure_webhook
from bss.settings import get_settings

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@contextmanager
def _session() -> Iterator[Session]:
    """A session whose refusals become the command's error message (exit status 1)."""
    try:
        with session_scope(get_settings().database_url) as s:
            yield s
    except BssError as exc:
        details = exc.details if isinstance(exc.details, list) else []
        lines = [exc.message] + [
            f"  {d['field']}: {d['problem']}" for d in details if d["problem"] not in exc.message
        ]
        raise click.ClickException("\n".join(lines)) from exc


def _print(rows: list[dict[str, Any]], as_json: bool, *, one: bool = False) -> None:
    if as_json:
        click.echo(json.dumps(rows[0] if one else rows, indent=2, default=str))
        return
    if one:
        for key, value in rows[0].items():
            shown = ", ".join(map(str, value)) if isinstance(value, list) else value
            click.echo(f"{key + ':':<18} {'-' if shown in (None, '') else shown}")
        return
    if not rows:
        click.echo("(none)")
        return
    keys = list(rows[0])
    widths = {
        k: max(len(k), *(len(str(r[k] if r[k] is not None else "-")) for r in rows)) for k in keys
    }
    click.echo("  ".join(k.upper().ljust(widths[k]) for k in keys).rstrip())
    for r in rows:
        cells = (str(r[k] if r[k] is not None else "-").ljust(widths[k]) for k in keys)
        click.echo("  ".join(cells).rstrip())


def _distributor_row(s: Session, d: Distributor) -> dict[str, Any]:
    count = s.exec(select(func.count()).where(Instance.distributor_id == d.id)).one()
    return {
        "slug": d.slug,
        "name": d.name,
        "instances": count,
        "webhook_url": d.webhook_url,
        "created_at": iso(d.created_at),
        # its share of the workers (`distributors set`): jobs sent at once ("-": no limit)
        "weight": d.weight,
        "max_in_flight": d.max_in_flight,
        "at_once": fair_share(get_settings().fair_share_slots, d.weight, d.max_in_flight),
    }


def _instance_row(s: Session, i: Instance) -> dict[str, Any]:
    d = s.get(Distributor, i.distributor_id)
    return {
        "ref": f"{d.slug if d else i.distributor_id}/{i.name}",
        "id": i.id,
        "mode": i.mode,
        "status": i.status,
        "client_id": i.client_id or None,
        "authenticated_as": i.delegated_admin or i.authenticated_as,
        "last_refresh_at": iso(i.last_refresh_at),
    }


@click.group()
def distributors() -> None:
    """Distributors (tenants)."""


@distributors.command("create")
@click.argument("name")
@click.option("--slug", default=None, help="Short name used everywhere else (default: from NAME).")
def distributors_create(name: str, slug: str | None) -> None:
    """Create a distributor called NAME."""
    with _session() as s:
        d = create_distributor(s, name=name, slug=slug)
        click.echo(f"Created distributor {d.slug}.")


@distributors.command("list")
@json_option
def distributors_list(as_json: bool) -> None:
    """Every distributor, with its slug (what the other commands take)."""
    with _session() as s:
        rows = s.exec(select(Distributor).order_by(col(Distributor.slug))).all()
        _print([_distributor_row(s, d) for d in rows], as_json)


@distributors.command("show")
@click.argument("slug")
@json_option
def distributors_show(slug: str, as_json: bool) -> None:
    """One distributor: its instances, API keys and users."""
    with _session() as s:
        d = distributor_by_slug(s, slug)
        row = _distributor_row(s, d)
        names = s.exec(select(Instance.name).where(Instance.distributor_id == d.id)).all()
        row["instance_names"] = sorted(names)
        row["active_api_keys"] = sum(1 for k in list_api_keys(s, distributor=d) if not k.revoked_at)
        emails = s.exec(select(User.email).where(User.distributor_id == d.id)).all()
        row["users"] = sorted(emails)
        _print([row], as_json, one=True)


@click.group()
def instances() -> None:
    """A distributor's connections to Google."""


@instances.command("list")
@click.argument("distributor", required=False)
@json_option
def instances_list(distributor: str | None, as_json: bool) -> None:
    """Instances of DISTRIBUTOR (its slug), or of every distributor."""
    with _session() as s:
        query = select(Instance).order_by(col(Instance.distributor_id), col(Instance.name))
        if distributor:
            query = query.where(Instance.distributor_id == distributor_by_slug(s, distributor).id)
        _print([_instance_row(s, i) for i in s.exec(query).all()], as_json)


@instances.command("show")
@click.argument("instance")
@json_option
def instances_show(instance: str, as_json: bool) -> None:
    """One instance (DISTRIBUTOR/NAME, a name or an id): status, grant, redirect URIs."""
    settings = get_settings()
    with _session() as s:
        i = find_instance(s, instance)
        row = _instance_row(s, i)
        row.update(
            granted_scopes=i.granted_scopes.split(),
            authenticated_at=iso(i.authenticated_at),
            last_error=i.last_error,
            redirect_uris=redirect_uris(settings.base_urls) if i.mode == InstanceMode.OAUTH else [],
            quotas_per_second=instance_limits(i, settings),
        )
        _print([row], as_json, one=True)


@instances.command("create")
@click.argument("distributor")
@click.argument("name")
@click.option("--client-id", default="", help="OAuth client ID (…apps.googleusercontent.com).")
@click.option(
    "--client-secret-stdin", is_flag=True, help="Read the OAuth client secret from standard input."
)
@click.option(
    "--key",
    "key_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Service account key (JSON): the instance uses domain-wide delegation.",
)
@click.option("--subject", default="", help="With --key: the reseller admin to impersonate.")
@json_option
def instances_create(
    distributor: str,
    name: str,
    client_id: str,
    client_secret_stdin: bool,
    key_file: Path | None,
    subject: str,
    as_json: bool,
) -> None:
    """Create instance NAME of DISTRIBUTOR, with an OAuth client (then Authenticate Instance in
    the portal) or a service account (--key FILE --subject EMAIL; then `bss doctor`)."""
    settings = get_settings()
    vault = vault_from_settings(settings)
    if key_file and (client_id or client_secret_stdin):
        raise click.UsageError("Give an OAuth client or a service account key, not both.")
    if key_file and not subject:
        raise click.UsageError("--key needs --subject, the reseller admin to impersonate.")
    secret = _stdin_line() if client_secret_stdin else ""
    with _session() as s:
        d = distributor_by_slug(s, distributor)
        mode = InstanceMode.SERVICE_ACCOUNT if key_file else InstanceMode.OAUTH
        i = create_instance(
            s,
            vault=vault,
            distributor=d,
            name=name,
            client_id=client_id,
            client_secret=secret,
            mode=mode,
        )
        notes: list[str] = []
        if key_file:
            notes = configure_service_account(
                s, i, vault=vault, key_file=key_file.read_bytes(), delegated_admin=subject
            )
        s.flush()
        row = _instance_row(s, i)
        row["redirect_uris"] = redirect_uris(settings.base_urls) if not key_file else []
        row["next"] = (
            f"bss doctor {row['ref']}"
            if key_file
            else "Authenticate Instance in the portal (add the redirect URIs to the client first)"
        )
        row["notes"] = notes
    _print([row], as_json, one=True)


@click.group()
def users() -> None:
    """Portal users."""


@users.command("create")
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice(["operator", "distributor_admin", "viewer"]),
    default="operator",
    show_default=True,
)
@click.option(
    "--distributor",
    default=None,
    help="Slug of a distributor admin's distributor (a viewer's: read-only of it; else of all).",
)
@click.option("--name", default="", help="The user's name.")
@click.option("--google-only", is_flag=True, help="No password: Sign in with Google only.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (no prompt)."
)
def users_create(
    email: str,
    role: str,
    distributor: str | None,
    name: str,
    google_only: bool,
    password_stdin: bool,
) -> None:
    """Create a portal user with e-mail address EMAIL (the first one: an operator)."""
    password: str | None = None
    if password_stdin:
        password = _stdin_line()
    elif not google_only:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _session() as s:
        d = distributor_by_slug(s, distributor) if distributor else None
        user = create_user(s, email=email, role=role, distributor=d, password=password, name=name)
        if role == "viewer" and d is not None:  # create_user keeps one only for admins
            user.distributor_id = d.id
        click.echo(f"Created {user.role} {user.email}.")


@users.command("list")
@click.option("--distributor", default=None, help="Only this distributor's users (its slug).")
@json_option
def users_list(distributor: str | None, as_json: bool) -> None:
    """Portal users: e-mail, role, distributor, last sign-in."""
    with _session() as s:
        slugs = {d.id: d.slug for d in s.exec(select(Distributor)).all()}
        query = select(User).order_by(col(User.email))
        if distributor:
            query = query.where(User.distributor_id == distributor_by_slug(s, distributor).id)
        rows = [
            {
                "email": u.email,
                "role": u.role,
                "distributor": slugs.get(u.distributor_id) if u.distributor_id else None,
                "sign_in": "password" if u.password_hash else "google",
                "last_sign_in_at": iso(u.last_sign_in_at),
                "disabled": bool(u.disabled_at),
            }
            for u in s.exec(query).all()
        ]
        _print(rows, as_json)


@click.group("api-keys")
def api_keys() -> None:
    """Billing API keys."""


@api_keys.command("create")
@click.argument("distributor")
@click.option("--label", default="", help="What the key is for.")
def api_keys_create(distributor: str, label: str) -> None:
    """Create an API key for DISTRIBUTOR (its slug); the key is shown once."""
    with _session() as s:
        key = create_api_key(s, distributor=distributor_by_slug(s, distributor), label=label)
    click.echo(key)


@api_keys.command("list")
@click.argument("distributor")
@json_option
def api_keys_list(distributor: str, as_json: bool) -> None:
    """DISTRIBUTOR's API keys: id, prefix, label, created, last used, revoked (never the key)."""
    with _session() as s:
        keys: list[ApiKey] = list_api_keys(s, distributor=distributor_by_slug(s, distributor))
        rows = [
            {
                "id": k.id,
                "prefix": f"{k.prefix}…",
                "label": k.label or None,
                "created_at": iso(k.created_at),
                "last_used_at": iso(k.last_used_at) or "never",
                "state": f"revoked {iso(k.revoked_at)}" if k.revoked_at else "active",
            }
            for k in keys
        ]
        _print(rows, as_json)


@api_keys.command("revoke")
@click.argument("distributor")
@click.argument("key")
def api_keys_revoke(distributor: str, key: str) -> None:
    """Revoke DISTRIBUTOR's API key KEY (its id or its prefix, as `list` shows them)."""
    with _session() as s:
        k = revoke_api_key(s, distributor=distributor_by_slug(s, distributor), key_id=key)
        click.echo(f"Revoked API key {k.id} ({k.prefix}…).")


@click.group()
def webhooks() -> None:
    """Webhooks to a distributor's billing system."""


@webhooks.command("set")
@click.argument("distributor")
@click.argument("url")
@click.option("--secret", default=None, help="Signing secret (default: a new one, shown once).")
def webhooks_set(distributor: str, url: str, secret: str | None) -> None:
    """Send DISTRIBUTOR's job and instance events to URL, signed with a secret."""
    settings = get_settings()
    with _session() as s:
        shown = configure_webhook(
            s,
            settings=settings,
            distributor=distributor_by_slug(s, distributor),
            vault=vault_from_settings(settings),
            url=url,
            secret=secret,
        )
    click.echo(f"Webhook set. Signing secret (shown once): {shown}")


def _stdin_line() -> str:
    return sys.stdin.readline().rstrip("\n")


COMMANDS: tuple[click.Group, ...] = (distributors, instances, users, api_keys, webhooks)
