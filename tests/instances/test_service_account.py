"""Service-account instances: the key upload (validated), what to paste at Google, and the
per-scope verification of the domain-wide delegation."""

from __future__ import annotations

import html
import io
import json
import re

from bss.db import session_scope
from bss.gateway import REQUIRED_SCOPES
from bss.models import Instance, InstanceStatus
from tests.support.portal import sandbox_post


def new_sa_instance(portal, name: str = "sa") -> int:
    resp = portal.post("/portal/instances/new", {"name": name, "mode": "service_account"})
    assert resp.status_code == 302, resp.text
    return int(resp.location.rsplit("/", 1)[1])


def upload(portal, instance_id: int, key: object, admin: str):
    raw = key if isinstance(key, bytes) else json.dumps(key).encode()
    return portal.post(
        f"/portal/instances/{instance_id}/service-account",
        {"delegated_admin": admin, "key_file": (io.BytesIO(raw), "key.json")},
        content_type="multipart/form-data",
    )


def flashes(page: str) -> list[str]:
    found = re.findall(r'class="flash flash-(\w+)" role="status">([^<]*)<', page)
    return [(kind, html.unescape(text)) for kind, text in found]


def verdicts(page: str) -> dict[str, str]:
    rows = re.findall(r'<td class="(?:pass|fail)">(PASS|FAIL)</td><td>([^<]+)</td>', page)
    return {name: verdict for verdict, name in rows}


def test_a_bad_key_file_is_refused_with_what_is_wrong(portal, google, database_url):
    instance_id = new_sa_instance(portal)
    key = sandbox_post(google.sandbox, "/_sandbox/service-accounts", {"project": google.project})
    cases = {
        b"not json at all": "not JSON",
        json.dumps({**key, "type": "authorized_user"}).encode(): "not 'service_account'",
        json.dumps(
            {k: v for k, v in key.items() if k != "private_key"}
        ).encode(): "private_key missing",
        json.dumps(
            {k: v for k, v in key.items() if k != "token_uri"}
        ).encode(): "token_uri missing",
    }
    for raw, expected in cases.items():
        upload(portal, instance_id, raw, google.admin)
        page = portal.get(f"/portal/instances/{instance_id}").text
        assert any(kind == "error" and expected in text for kind, text in flashes(page)), expected
    with session_scope(database_url) as s:
        assert s.get(Instance, instance_id).service_account_key_enc is None


def test_delegation_is_verified_scope_by_scope(portal, google, database_url):
    instance_id = new_sa_instance(portal)
    key = sandbox_post(google.sandbox, "/_sandbox/service-accounts", {"project": google.project})
    upload(portal, instance_id, key, google.admin)
    # The page shows what to compare with Google's console, and the scopes to paste
    page = portal.get(f"/portal/instances/{instance_id}").text
    for shown in (key["client_id"], key["client_email"], key["private_key_id"]):
        assert shown in page
    assert ",".join(REQUIRED_SCOPES) in page
    assert "PRIVATE KEY" not in page
    # Given the admin console delegates all but the Gmail scope
    partial = [s for s in REQUIRED_SCOPES if "gmail" not in s]
    sandbox_post(
        google.sandbox,
        "/_sandbox/delegations",
        {"reseller": google.reseller, "client_id": key["client_id"], "scopes": partial},
    )
    portal.post(f"/portal/instances/{instance_id}/verify")
    page = portal.get(f"/portal/instances/{instance_id}").text
    results = verdicts(page)
    assert results["Delegation of https://www.googleapis.com/auth/gmail.send"] == "FAIL"
    assert all(results[f"Delegation of {s}"] == "PASS" for s in partial)
    assert f"give client ID {key['client_id']} the scope" in page
    with session_scope(database_url) as s:
        assert s.get(Instance, instance_id).status == InstanceStatus.NOT_AUTHENTICATED
    # When the Gmail scope is delegated too
    sandbox_post(
        google.sandbox,
        "/_sandbox/delegations",
        {
            "reseller": google.reseller,
            "client_id": key["client_id"],
            "scopes": list(REQUIRED_SCOPES),
        },
    )
    portal.post(f"/portal/instances/{instance_id}/verify")
    page = portal.get(f"/portal/instances/{instance_id}").text
    assert set(verdicts(page).values()) == {"PASS"}
    with session_scope(database_url) as s:
        inst = s.get(Instance, instance_id)
        assert inst.status == InstanceStatus.AUTHENTICATED
        assert inst.authenticated_as == google.admin


def test_a_new_key_replaces_the_old_one(portal, google, database_url):
    instance_id = new_sa_instance(portal)
    first = sandbox_post(google.sandbox, "/_sandbox/service-accounts", {"project": google.project})
    second = sandbox_post(google.sandbox, "/_sandbox/service-accounts", {"project": google.project})
    upload(portal, instance_id, first, google.admin)
    upload(portal, instance_id, second, google.admin)
    page = portal.get(f"/portal/instances/{instance_id}").text
    assert second["private_key_id"] in page and first["private_key_id"] not in page
    assert any("replaces the previous key" in text for _, text in flashes(page))


def test_check_of_a_delegated_service_account(portal, google):
    instance_id = new_sa_instance(portal)
    key = sandbox_post(google.sandbox, "/_sandbox/service-accounts", {"project": google.project})
    upload(portal, instance_id, key, google.admin)
    sandbox_post(
        google.sandbox,
        "/_sandbox/delegations",
        {
            "reseller": google.reseller,
            "client_id": key["client_id"],
            "scopes": list(REQUIRED_SCOPES),
        },
    )
    portal.post(f"/portal/instances/{instance_id}/verify")
    portal.post(f"/portal/instances/{instance_id}/check")
    results = verdicts(portal.get(f"/portal/instances/{instance_id}").text)
    assert results["Token refresh"] == "PASS" and results["Reseller access"] == "PASS"
    assert set(results.values()) == {"PASS"}, results
