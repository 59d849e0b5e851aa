"""What the tests of subscribing, pulling and reconciling set up, at (sandbox) Google over HTTP
and in our database: a reseller with an authenticated instance of ours, the platform's own
service account (in a Cloud project of its own), customers, billing's succeeded jobs, and
changes made "in the Admin console"."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from bss.accounts import create_distributor
from bss.crypto import vault_from_settings
from bss.db import session_scope
from bss.gateway import REQUIRED_SCOPES
from bss.instances import create_instance, store_oauth_grant
from bss.models import Distributor, Instance, Job, JobState, utcnow
from bss.settings import Settings

STARTER = "1010020027"


def post(sandbox: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    resp = requests.post(sandbox + path, json=body or {}, timeout=30)
    assert resp.status_code < 300, resp.text
    return resp.json()


def get(sandbox: str, path: str) -> dict[str, Any]:
    resp = requests.get(sandbox + path, timeout=30)
    assert resp.status_code < 300, resp.text
    return resp.json()


@dataclass
class Reseller:
    """A reseller at the sandbox with a Cloud project and an OAuth client of its own."""

    sandbox: str
    domain: str
    admin: str
    project: str
    client_id: str
    client_secret: str


def new_reseller(sandbox: str) -> Reseller:
    tag = uuid.uuid4().hex[:8]
    domain, admin = f"reseller-{tag}.example", f"admin@reseller-{tag}.example"
    post(sandbox, "/_sandbox/resellers", {"domain": domain, "admin_email": admin})
    project = post(sandbox, "/_sandbox/projects", {"reseller": domain})["project_id"]
    web = post(
        sandbox,
        "/_sandbox/clients",
        {"project": project, "name": "Provisioning", "redirect_uris": ["http://localhost/cb"]},
    )["web"]
    return Reseller(sandbox, domain, admin, project, web["client_id"], web["client_secret"])


def platform_key(sandbox: str, home: Path) -> Path:
    """The platform's own service account, in a Cloud project of its own; its key file."""
    platform = new_reseller(sandbox)  # the sandbox wants every project to belong to someone
    key = post(sandbox, "/_sandbox/service-accounts", {"project": platform.project})
    path = home / f"platform-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(key))
    return path


def events_settings(base: Settings, sandbox: str, key: Path | None, **more: Any) -> Settings:
    """`base`'s database and keys, Google at the sandbox, the platform's key (or none)."""
    return Settings(
        BSS_HOME=base.home,
        DATABASE_URL=base.database_url,
        BSS_SECRET_KEYS=base.secret_keys,
        GOOGLE_SANDBOX_URL=sandbox,
        GOOGLE_HTTP_TIMEOUT=5,
        BSS_PUBLIC_BASE_URLS="http://127.0.0.1:8123",
        BSS_EVENTS_SERVICE_ACCOUNT_FILE=str(key) if key else "",
        **more,
    )


def _authenticated_instance(
    settings: Settings, reseller: Reseller, distributor: Distributor, name: str
) -> int:
    """Instance `name` of `distributor`, authenticated as the reseller's admin; its id."""
    grant = post(
        reseller.sandbox,
        "/_sandbox/tokens",
        {"client_id": reseller.client_id, "user": reseller.admin, "scopes": list(REQUIRED_SCOPES)},
    )
    vault = vault_from_settings(settings)
    with session_scope(settings.database_url) as s:
        inst = create_instance(
            s,
            vault=vault,
            distributor=s.merge(distributor),
            name=name,
            client_id=reseller.client_id,
            client_secret=reseller.client_secret,
        )
        store_oauth_grant(
            s,
            inst,
            vault=vault,
            refresh_token=grant["refresh_token"],
            scopes=grant["scope"].split(),
            authenticated_as=reseller.admin,
        )
        s.flush()
        assert inst.id is not None
        return inst.id


def instance_of(settings: Settings, reseller: Reseller, *, name: str = "main") -> int:
    """A distributor of its own with instance `name` authenticated as the reseller's admin;
    the instance's id. Its webhook URL is set, so billing's deliveries are recorded."""
    vault = vault_from_settings(settings)
    with session_scope(settings.database_url) as s:
        d = create_distributor(s, name=f"Dist {uuid.uuid4().hex[:8]}")
        d.webhook_url = "https://billing.example/hooks"
        d.webhook_secret_enc = vault.encrypt("whsec")
        s.add(d)
        s.flush()
        s.expunge(d)
    return _authenticated_instance(settings, reseller, d, name)


def second_instance(settings: Settings, reseller: Reseller, instance_id: int, name: str) -> int:
    """Another instance of the same distributor at the same reseller."""
    with session_scope(settings.database_url) as s:
        first = s.get(Instance, instance_id)
        assert first is not None
        d = s.get(Distributor, first.distributor_id)
        assert d is not None
        s.expunge(d)
    return _authenticated_instance(settings, reseller, d, name)


def customer(reseller: Reseller, domain: str, *, seats: int = 5) -> dict[str, Any]:
    """A FLEXIBLE Business Starter customer of the reseller (nothing published)."""
    return post(
        reseller.sandbox,
        "/_sandbox/customers",
        {
            "customerDomain": domain,
            "reseller": reseller.domain,
            "admin_email": f"admin@{domain}",
            "tos_accepted": True,
            "subscriptions": [{"skuId": STARTER, "planName": "FLEXIBLE", "seats": seats}],
        },
    )


def console(sandbox: str, domain: str, change: dict[str, Any], sku: str = STARTER) -> dict:
    """A change "in the Admin console": Google publishes its event to whoever listens."""
    return post(sandbox, f"/_sandbox/customers/{domain}/subscriptions/{sku}/console", change)


def billing_set_seats(
    settings: Settings, instance_id: int, made: dict[str, Any], seats: int
) -> str:
    """What a succeeded subscription.change_seats job of billing's leaves: the desired state."""
    sub = next(s for s in made["subscriptions"] if s["skuId"] == STARTER)
    with session_scope(settings.database_url) as s:
        instance = s.get(Instance, instance_id)
        assert instance is not None
        job = Job(
            distributor_id=instance.distributor_id,
            instance_id=instance_id,
            operation="subscription.change_seats",
            customer_domain=made["customerDomain"],
            params={"customer": made["customerDomain"], "sku_id": STARTER, "seats": seats},
            request_hash=uuid.uuid4().hex * 2,
            state=JobState.SUCCEEDED,
            finished_at=utcnow(),
            result={
                "subscriptionId": sub["subscriptionId"],
                "skuId": STARTER,
                "status": "ACTIVE",
                "plan": "FLEXIBLE",
                "seats": seats,
            },
        )
        s.add(job)
        return job.id
