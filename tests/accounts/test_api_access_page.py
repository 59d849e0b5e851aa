"""A distributor's billing access in the portal: API keys shown once, the webhook, the audit."""

from __future__ import annotations

import re

from sqlmodel import select

from bss.db import session_scope
from bss.models import ApiKey, AuditEntry, Distributor
from tests.support.portal import Portal, make_account

KEY = re.compile(r'id="new-key-value">(bss_[A-Za-z0-9_-]+)<')
SECRET = re.compile(r'id="new-secret-value">([^<]+)<')


def page_of(account) -> str:
    return f"/portal/distributors/{account.distributor_id}/api-access"


def audit_actions(database_url: str, distributor_id: int) -> list[str]:
    with session_scope(database_url) as s:
        rows = s.exec(
            select(AuditEntry)
            .where(AuditEntry.distributor_id == distributor_id)
            .order_by(AuditEntry.id)  # type: ignore[arg-type]
        ).all()
        return [r.action for r in rows]


def test_a_new_api_key_is_shown_once_and_works_then_revoking_it_locks_billing_out(
    app, portal, account, database_url
):
    # When the admin creates a key
    resp = portal.post(
        f"/portal/distributors/{account.distributor_id}/api-keys", {"label": "production billing"}
    )
    assert resp.status_code == 200
    key = KEY.search(resp.text).group(1)
    # Then it authenticates the billing API
    api = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    assert api.get("/api/v1/jobs", headers=headers).status_code == 200
    # And the page never shows it again, nor does the database hold it
    again = portal.get(page_of(account)).text
    assert key not in again and key[:12] in again and "production billing" in again
    with session_scope(database_url) as s:
        stored = s.exec(select(ApiKey).where(ApiKey.distributor_id == account.distributor_id)).one()
        assert key not in stored.model_dump_json()
    # When the admin revokes it, billing is refused from then on
    revoked = portal.post(
        f"/portal/distributors/{account.distributor_id}/api-keys/{stored.id}/revoke"
    )
    assert revoked.status_code == 302
    assert api.get("/api/v1/jobs", headers=headers).status_code == 401
    assert audit_actions(database_url, account.distributor_id) == [
        "api_key.create",
        "api_key.revoke",
    ]


def test_the_webhook_secret_is_generated_shown_once_and_stored_encrypted(
    portal, account, database_url
):
    url = "https://billing.example.com/hooks/workspace"
    resp = portal.post(f"/portal/distributors/{account.distributor_id}/webhook", {"url": url})
    assert resp.status_code == 200
    secret = SECRET.search(resp.text).group(1)
    assert secret.startswith("whsec_")
    page = portal.get(page_of(account)).text
    assert url in page and secret not in page
    with session_scope(database_url) as s:
        d = s.get(Distributor, account.distributor_id)
        assert d.webhook_url == url and secret not in (d.webhook_secret_enc or "")
    assert audit_actions(database_url, account.distributor_id) == ["webhook.update"]


def test_a_bad_webhook_url_is_refused_and_changes_nothing(portal, account, database_url):
    resp = portal.post(
        f"/portal/distributors/{account.distributor_id}/webhook", {"url": "ftp://nope"}
    )
    assert resp.status_code == 422
    assert "must be an absolute http(s) URL" in resp.text
    with session_scope(database_url) as s:
        assert s.get(Distributor, account.distributor_id).webhook_url is None
    assert audit_actions(database_url, account.distributor_id) == []


def test_another_distributors_keys_and_webhook_are_404(app, portal, account, database_url):
    portal.post(f"/portal/distributors/{account.distributor_id}/api-keys", {"label": "a"})
    with session_scope(database_url) as s:
        key_id = s.exec(
            select(ApiKey.id).where(ApiKey.distributor_id == account.distributor_id)
        ).one()
    other = Portal(app.test_client()).sign_in(make_account(database_url))
    base = f"/portal/distributors/{account.distributor_id}"
    assert other.get(f"{base}/api-access").status_code == 404
    assert other.post(f"{base}/api-keys", {"label": "mine now"}).status_code == 404
    assert other.post(f"{base}/api-keys/{key_id}/revoke").status_code == 404
    assert other.post(f"{base}/webhook", {"url": "https://evil.example/"}).status_code == 404
    with session_scope(database_url) as s:
        assert s.get(ApiKey, key_id).revoked_at is None
        assert s.get(Distributor, account.distributor_id).webhook_url is None


def test_instance_changes_are_on_the_audit_log_with_who_and_where(
    portal, account, google, database_url
):
    instance_id = portal.create_instance("main", google.client_id, google.client_secret)
    portal.post(
        f"/portal/instances/{instance_id}/edit",
        {
            "name": "main",
            "mode": "oauth",
            "client_id": google.client_id,
            "client_secret": "a-new-secret-value",
        },
    )
    portal.post(f"/portal/instances/{instance_id}/disconnect")
    with session_scope(database_url) as s:
        rows = s.exec(
            select(AuditEntry).where(AuditEntry.distributor_id == account.distributor_id)
        ).all()
    assert [r.action for r in rows] == ["instance.create", "instance.update", "instance.disconnect"]
    assert {r.actor for r in rows} == {account.email}
    assert all(r.source_ip for r in rows)
    assert all("a-new-secret-value" not in str(r.details) for r in rows)


def test_authenticating_an_instance_is_on_the_audit_log(portal, account, google, database_url):
    from tests.support.portal import authenticated_instance

    authenticated_instance(portal, google)
    assert audit_actions(database_url, account.distributor_id) == [
        "instance.create",
        "instance.authenticate",
    ]


def test_the_api_key_page_is_for_signed_in_users_only(anonymous, account):
    resp = anonymous.get(page_of(account))
    assert resp.status_code == 302 and "/sign-in" in resp.location


def test_disabling_and_enabling_an_instance_from_its_page_is_audited(
    portal, account, google, database_url
):
    from bss.models import Instance

    instance_id = portal.create_instance("main", google.client_id, google.client_secret)
    page = portal.get(f"/portal/instances/{instance_id}").text
    assert 'id="disable"' in page
    assert portal.post(f"/portal/instances/{instance_id}/disable").status_code == 302
    assert 'id="enable"' in portal.get(f"/portal/instances/{instance_id}").text
    with session_scope(database_url) as s:
        assert s.get(Instance, instance_id).status == "disabled"
    assert portal.post(f"/portal/instances/{instance_id}/enable").status_code == 302
    with session_scope(database_url) as s:
        # never authenticated: enabled, but not authenticated
        assert s.get(Instance, instance_id).status == "not_authenticated"
    assert audit_actions(database_url, account.distributor_id) == [
        "instance.create",
        "instance.disable",
        "instance.enable",
    ]
