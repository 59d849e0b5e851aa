"""Health, Check (the button and `bss doctor`), and Disconnect."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from datetime import timedelta

import requests
from sqlmodel import select

from bss.crypto import Vault
from bss.db import session_scope
from bss.models import Distributor, Instance, InstanceStatus, WebhookDelivery, utcnow
from tests.support.portal import authenticated_instance, sandbox_post, set_up_google


def check(portal, instance_id: int) -> str:
    resp = portal.post(f"/portal/instances/{instance_id}/check")
    assert resp.status_code == 302
    return html.unescape(portal.get(f"/portal/instances/{instance_id}").text)


def verdicts(page: str) -> dict[str, str]:
    rows = re.findall(r'<td class="(?:pass|fail)">(PASS|FAIL)</td><td>([^<]+)</td>', page)
    return {name: verdict for verdict, name in rows}


def test_check_passes_for_a_healthy_instance(portal, google):
    instance_id = authenticated_instance(portal, google)
    page = check(portal, instance_id)
    results = verdicts(page)
    assert set(results.values()) == {"PASS"}, results
    for name in (
        "Token refresh",
        "Google Workspace Reseller API",
        "Admin SDK API",
        "Enterprise License Manager API",
        "Gmail API",
        "Reseller access",
    ):
        assert name in results
    assert "answered 404: free" in page
    assert "valid until" in page


def test_check_names_the_api_to_enable(portal, google):
    instance_id = authenticated_instance(portal, google)
    requests.patch(
        f"{google.sandbox}/_sandbox/projects/{google.project}",
        json={"disable": ["gmail.googleapis.com"]},
        timeout=10,
    ).raise_for_status()
    page = check(portal, instance_id)
    assert verdicts(page)["Gmail API"] == "FAIL"
    assert "Enable the Gmail API in your Cloud project" in page
    assert "gmail.googleapis.com" in page
    assert verdicts(page)["Google Workspace Reseller API"] == "PASS"


def test_invalid_grant_seven_days_after_consent_means_a_testing_consent_screen(
    portal, sandbox, database_url
):
    # Given an External consent screen left in Testing
    google = set_up_google(sandbox, "http://localhost", publishing_status="testing")
    instance_id = authenticated_instance(portal, google)
    # When 7 days pass
    sandbox_post(sandbox, "/_sandbox/clock", {"advance_seconds": 7 * 24 * 3600 + 3600})
    with session_scope(database_url) as s:
        inst = s.get(Instance, instance_id)
        inst.authenticated_at = utcnow() - timedelta(days=7, hours=1)
        s.add(inst)
    page = check(portal, instance_id)
    # Then Check explains the Testing status and the fix
    assert verdicts(page)["Token refresh"] == "FAIL"
    assert "'Testing'" in page and "Publish app" in page
    assert "apis/credentials/consent" in page
    with session_scope(database_url) as s:
        assert s.get(Instance, instance_id).status == InstanceStatus.NEEDS_REAUTH
    assert "Needs re-authentication" in page


def test_a_revoked_grant_asks_for_reauthentication(portal, google, database_url, secret_keys):
    instance_id = authenticated_instance(portal, google)
    with session_scope(database_url) as s:  # billing listens for webhooks
        d = s.get(Distributor, s.get(Instance, instance_id).distributor_id)
        d.webhook_url = "https://billing.example/hooks"
        d.webhook_secret_enc = Vault(secret_keys.split(",")).encrypt("s" * 32)
    sandbox_post(
        google.sandbox, "/_sandbox/revoke", {"user": google.admin, "client_id": google.client_id}
    )
    page = check(portal, instance_id)
    assert verdicts(page)["Token refresh"] == "FAIL"
    assert "invalid_grant" in page and "Re-authenticate the instance" in page
    assert "'Testing'" not in page
    # And billing is told, as when a job finds out
    with session_scope(database_url) as s:
        inst = s.get(Instance, instance_id)
        assert inst.status == InstanceStatus.NEEDS_REAUTH
        [delivery] = s.exec(
            select(WebhookDelivery).where(WebhookDelivery.distributor_id == inst.distributor_id)
        ).all()
        assert delivery.event == "instance.needs_reauth"
        assert delivery.payload["data"]["instance"]["status"] == "needs_reauth"


def test_disconnect_revokes_at_google_and_deletes_the_tokens(
    portal, google, database_url, secret_keys
):
    instance_id = authenticated_instance(portal, google)
    with session_scope(database_url) as s:
        token = Vault([secret_keys]).decrypt(s.get(Instance, instance_id).refresh_token_enc)
    resp = portal.post(f"/portal/instances/{instance_id}/disconnect")
    assert resp.status_code == 302
    page = html.unescape(portal.get(f"/portal/instances/{instance_id}").text)
    assert "is disconnected. Google revoked its access." in page
    with session_scope(database_url) as s:
        inst = s.get(Instance, instance_id)
        assert inst.refresh_token_enc is None and inst.status == InstanceStatus.NOT_AUTHENTICATED
        assert inst.granted_scopes == "" and inst.authenticated_as is None
    refused = requests.post(
        f"{google.sandbox}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token,
            "client_id": google.client_id,
            "client_secret": google.client_secret,
        },
        timeout=10,
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


def test_bss_doctor_on_the_command_line(portal, google, account, settings_for_portal):
    instance_id = authenticated_instance(portal, google, name="doc")
    env = dict(
        os.environ,
        DATABASE_URL=settings_for_portal.database_url,
        BSS_SECRET_KEYS=settings_for_portal.secret_keys,
        GOOGLE_SANDBOX_URL=google.sandbox,
        BSS_HOME=str(settings_for_portal.home),
    )
    ok = subprocess.run(
        [sys.executable, "-m", "bss", "doctor", f"{account.distributor_slug}/doc"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "PASS  Reseller access" in ok.stdout
    requests.patch(
        f"{google.sandbox}/_sandbox/projects/{google.project}",
        json={"disable": ["reseller.googleapis.com"]},
        timeout=10,
    ).raise_for_status()
    bad = subprocess.run(
        [sys.executable, "-m", "bss", "doctor", str(instance_id)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1
    assert "FAIL  Google Workspace Reseller API" in bad.stdout
    assert "Enable the Google Workspace Reseller API in your Cloud project" in bad.stdout
