"""A distributor with an instance authenticated at a new reseller of the sandbox: what a
distributor does in Google's console and with Authenticate Instance, done through the sandbox's
operator API, for benches and end-to-end tests that need one more tenant."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import requests

from bss.accounts import create_api_key, create_distributor
from bss.crypto import vault_from_settings
from bss.db import session_scope
from bss.gateway import REQUIRED_SCOPES
from bss.instances import create_instance, store_oauth_grant
from bss.models import saved_id
from bss.settings import Settings


@dataclass(frozen=True)
class SandboxTenant:
    """What was made: ids of ours, and the reseller, admin and OAuth client at the sandbox."""

    distributor_id: int
    instance_id: int
    instance: str
    reseller: str
    admin: str
    client_id: str
    client_secret: str
    # The distributor's API key, when one was asked for (`api_key_label`)
    api_key: str | None


def _post(sandbox: str, path: str, body: dict) -> dict:
    resp = requests.post(sandbox + path, json=body, timeout=30)
    resp.raise_for_status()
    return dict(resp.json())


def sandbox_tenant(
    sandbox: str,
    settings: Settings,
    *,
    name: str,
    slug: str | None = None,
    instance: str = "main",
    reseller: str | None = None,
    redirect_uris: Sequence[str] = (),
    api_key_label: str | None = None,
) -> SandboxTenant:
    """A new sandbox reseller (`reseller-<random>.example` unless named) with its admin, Cloud
    project and web OAuth client; a distributor of ours with instance `instance` authenticated
    as that admin with the scopes we require; and, with `api_key_label`, an API key."""
    reseller = reseller or f"reseller-{uuid.uuid4().hex[:8]}.example"
    admin = f"admin@{reseller}"
    _post(sandbox, "/_sandbox/resellers", {"domain": reseller, "admin_email": admin})
    project = _post(sandbox, "/_sandbox/projects", {"reseller": reseller})["project_id"]
    client = _post(
        sandbox,
        "/_sandbox/clients",
        {"project": project, "name": f"{name} provisioning", "redirect_uris": list(redirect_uris)},
    )["web"]
    grant = _post(
        sandbox,
        "/_sandbox/tokens",
        {"client_id": client["client_id"], "user": admin, "scopes": list(REQUIRED_SCOPES)},
    )
    vault = vault_from_settings(settings)
    with session_scope(settings.database_url) as s:
        distributor = create_distributor(s, name=name, slug=slug)
        inst = create_instance(
            s,
            vault=vault,
            distributor=distributor,
            name=instance,
            client_id=client["client_id"],
            client_secret=client["client_secret"],
        )
        store_oauth_grant(
            s,
            inst,
            vault=vault,
            refresh_token=grant["refresh_token"],
            scopes=grant["scope"].split(),
            authenticated_as=admin,
        )
        key = None
        if api_key_label is not None:
            key = create_api_key(s, distributor=distributor, label=api_key_label)
        s.flush()
        return SandboxTenant(
            distributor_id=saved_id(distributor),
            instance_id=saved_id(inst),
            instance=instance,
            reseller=reseller,
            admin=admin,
            client_id=client["client_id"],
            client_secret=client["client_secret"],
            api_key=key,
        )
