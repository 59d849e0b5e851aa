"""Mail senders on the Notifications page: the rules their fields follow for each mode, the
mailbox's consent through the sandbox's consent page (the same pop-up and callback as
Authenticate Instance), what the page shows of a token's validity, Refresh now, the default
sender, removal, and Send a test message."""

from __future__ import annotations

import json
import re

import pytest
import requests
from sqlmodel import select

from bss.crypto import Vault
from bss.db import session_scope
from bss.gateway import OAUTH_CALLBACK_PATH
from bss.models import (
    AuditEntry,
    MailMessage,
    MailSender,
    NotifyTopic,
    OAuthState,
    SenderStatus,
)
from tests.support.notifications import (
    add_sender,
    flashes,
    forms_of,
    page_of,
    post_and_read,
    result_of,
    sender_named,
    start_mailbox_consent,
)
from tests.support.portal import Google, Portal, authenticated_instance, make_account, set_up_google
from tests.support.portal_pages import google_consent, path_and_query, query_of

MAIL = "https://mail.google.com/"


@pytest.fixture
def mailed(app) -> list[str]:
    """Mail message ids the app hands to the mail queue (no worker in these tests)."""
    sent: list[str] = []
    app.extensions["bss.send_mail"] = sent.append
    return sent


def errors(page: str) -> list[str]:
    return [text for kind, text in flashes(page) if kind == "error"]


def audit_actions(database_url: str, distributor_id: int | None) -> list[str]:
    with session_scope(database_url) as s:
        column = AuditEntry.distributor_id
        rows = s.exec(
            select(AuditEntry)
            .where(column.is_(None) if distributor_id is None else column == distributor_id)  # type: ignore[union-attr]
            .order_by(AuditEntry.id)  # type: ignore[arg-type]
        ).all()
        return [r.action for r in rows]


def smtp_sender(portal: Portal, account, google: Google, database_url: str, **kw) -> MailSender:
    """An SMTP sender through a new instance's OAuth client (the instance needs no consent)."""
    instance_id = portal.create_instance(
        kw.pop("instance", "main"), google.client_id, google.client_secret
    )
    page = add_sender(
        portal,
        account.distributor_id,
        name=kw.pop("name", "alerts"),
        mode="smtp_xoauth2",
        instance_id=instance_id,
        **kw,
    )
    assert not errors(page), errors(page)
    sender = sender_named(database_url, account.distributor_id, "alerts")
    assert sender is not None
    return sender


def consent(portal: Portal, account, sender_id: int, google: Google, **answer):
    """Authenticate mailbox, and answer Google's page as the mailbox's owner would."""
    url = start_mailbox_consent(portal, account.distributor_id, sender_id)
    callback = google_consent(url, account=answer.pop("account", google.admin), **answer)
    return url, portal.get(path_and_query(callback))


def test_a_mailbox_consents_through_the_instances_client_and_the_page_shows_the_validity(
    portal, account, google, database_url, secret_keys
):
    # Given an SMTP sender whose mailbox consents through the instance's OAuth client
    sender = smtp_sender(portal, account, google, database_url)
    assert sender.status == SenderStatus.NOT_AUTHENTICATED and sender.from_address == ""

    # When the admin clicks Authenticate mailbox and allows on Google's page
    url, resp = consent(portal, account, sender.id, google)

    # Then Google was asked for Gmail's SMTP scope, offline, with a fresh consent and PKCE,
    # back at the very redirect URI the instance registered
    asked = query_of(url)
    assert set(asked["scope"].split()) == {
        MAIL,
        "openid",
        "https://www.googleapis.com/auth/userinfo.email",
    }
    assert asked["access_type"] == "offline" and asked["prompt"] == "consent"
    assert asked["code_challenge_method"] == "S256" and asked["code_challenge"]
    assert asked["client_id"] == google.client_id
    assert asked["redirect_uri"] == "http://localhost" + OAUTH_CALLBACK_PATH
    # And the pop-up tells the page it worked
    result = result_of(resp)
    assert resp.status_code == 200 and result["ok"] is True, result
    assert result["type"] == "bss-sender-auth" and result["sender_id"] == sender.id
    # And the sender sends as the mailbox that consented, its refresh token encrypted
    row = sender_named(database_url, account.distributor_id, "alerts")
    assert row.status == SenderStatus.OK and row.from_address == google.admin
    assert row.granted_scopes == MAIL and row.last_error is None
    assert row.authenticated_at and row.access_token_expires_at
    assert row.refresh_token_expires_at is None  # a published app: no end set by Google
    refresh_token = Vault([secret_keys]).decrypt(row.refresh_token_enc)
    assert refresh_token not in row.refresh_token_enc
    # And that token works at Google with the instance's client
    token = requests.post(
        f"{google.sandbox}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": google.client_id,
            "client_secret": google.client_secret,
        },
        timeout=10,
    )
    assert token.status_code == 200 and MAIL in token.json()["scope"]
    # And the page shows until when the tokens work, never a token
    page = portal.get(page_of(account.distributor_id)).text
    assert re.search(r"Access token valid until <time[^>]*>.*?</time> \(in \d+ min\)", page)
    assert "Refresh token: no expiry set by Google" in page
    assert refresh_token not in page and "ya29" not in page
    assert "mail_sender.authenticate" in audit_actions(database_url, account.distributor_id)


def test_a_testing_consent_screen_shows_when_the_refresh_token_ends(
    app, account, database_url, sandbox
):
    # Given an OAuth client whose consent screen is External and in Testing
    google = set_up_google(
        sandbox, "http://localhost", publishing_status="testing", user_type="external"
    )
    portal = Portal(app.test_client()).sign_in(account)
    sender = smtp_sender(portal, account, google, database_url)
    _, resp = consent(portal, account, sender.id, google)
    assert result_of(resp)["ok"] is True
    # Then Google's lifetime of the refresh token is kept and shown
    row = sender_named(database_url, account.distributor_id, "alerts")
    assert row.refresh_token_expires_at is not None
    page = portal.get(page_of(account.distributor_id)).text
    assert "Refresh token expires" in page and "(in 7 days)" in page


def test_the_mailbox_must_grant_gmails_smtp_scope(portal, account, google, database_url):
    sender = smtp_sender(portal, account, google, database_url)
    # When the mailbox's owner unticks the Gmail permission on Google's page
    _, resp = consent(
        portal,
        account,
        sender.id,
        google,
        scopes=["openid", "https://www.googleapis.com/auth/userinfo.email"],
    )
    # Then the pop-up names the scope that is missing, and nothing is stored
    result = result_of(resp)
    assert resp.status_code == 400 and result["reason"] == "scopes_missing"
    assert MAIL in result["message"] and "tick that permission" in result["message"]
    row = sender_named(database_url, account.distributor_id, "alerts")
    assert row.refresh_token_enc is None and row.status == SenderStatus.NOT_AUTHENTICATED


def test_another_mailbox_than_the_senders_address_is_refused(portal, account, google, database_url):
    # Given a sender meant to send as another address than the one that consents
    expected = "notifications@" + google.reseller
    sender = smtp_sender(portal, account, google, database_url, from_address=expected)
    _, resp = consent(portal, account, sender.id, google)
    # Then the pop-up says who consented and who was expected, and nothing is stored
    result = result_of(resp)
    assert result["reason"] == "other_mailbox", result
    assert google.admin in result["message"] and expected in result["message"]
    row = sender_named(database_url, account.distributor_id, "alerts")
    assert row.refresh_token_enc is None and row.from_address == expected


def test_cancelling_on_google_and_replaying_the_answer_change_nothing(
    portal, account, google, database_url
):
    sender = smtp_sender(portal, account, google, database_url)
    url = start_mailbox_consent(portal, account.distributor_id, sender.id)
    cancelled = portal.get(
        path_and_query(google_consent(url, account=google.admin, action="cancel"))
    )
    assert result_of(cancelled)["reason"] == "access_denied"
    assert "Authenticate mailbox again" in result_of(cancelled)["message"]
    _, good = consent(portal, account, sender.id, google)
    assert result_of(good)["ok"] is True
    # When the same answer from Google is replayed
    replayed = portal.get(good.request.full_path)
    assert result_of(replayed)["reason"] == "state_reused"
    # And another admin's browser cannot finish someone else's consent
    other = Portal(portal.client.application.test_client()).sign_in(make_account(database_url))
    url = start_mailbox_consent(portal, account.distributor_id, sender.id)
    stolen = other.get(path_and_query(google_consent(url, account=google.admin)))
    assert result_of(stolen)["reason"] == "state_other_user"


def test_the_instance_callback_still_authenticates_instances(portal, google):
    # The callback branches on the state's purpose: an instance's consent is unchanged
    authenticated_instance(portal, google)


def test_refresh_now_shows_the_new_validity_and_a_revoked_grant_shows_googles_answer(
    portal, account, google, database_url, secret_keys
):
    sender = smtp_sender(portal, account, google, database_url)
    consent(portal, account, sender.id, google)
    with session_scope(database_url) as s:
        row = s.get(MailSender, sender.id)
        row.access_token_expires_at = None  # as if it was never known
        s.add(row)
    # When the admin clicks Refresh now
    page = post_and_read(portal, account.distributor_id, f"/senders/{sender.id}/refresh", {})
    # Then the page tells until when the access token works
    assert any(
        kind == "ok" and "access token is valid until" in text for kind, text in flashes(page)
    ), flashes(page)
    assert sender_named(database_url, account.distributor_id, "alerts").access_token_expires_at
    assert "Access token valid until" in page

    # Given the mailbox's owner removes the app's access at Google
    refresh_token = Vault([secret_keys]).decrypt(
        sender_named(database_url, account.distributor_id, "alerts").refresh_token_enc
    )
    requests.post(f"{google.sandbox}/revoke", data={"token": refresh_token}, timeout=10)
    # (the access token cached for every process is dead too: Refresh now must ask Google)
    page = post_and_read(portal, account.distributor_id, f"/senders/{sender.id}/refresh", {})
    # Then Google's answer is shown, and the sender is failing with it
    assert any("invalid_grant" in e for e in errors(page)), flashes(page)
    row = sender_named(database_url, account.distributor_id, "alerts")
    assert row.status == SenderStatus.FAILING and "invalid_grant" in (row.last_error or "")
    assert f'id="sender-{sender.id}-error"' in page


def test_a_gmail_api_sender_needs_an_instance_authenticated_with_gmail_send(
    portal, account, google, database_url
):
    # Given an instance not yet authenticated
    bare = portal.create_instance("bare", google.client_id, google.client_secret)
    page = add_sender(
        portal, account.distributor_id, name="api", mode="gmail_api", instance_id=bare
    )
    assert any("not authenticated" in e for e in errors(page)), flashes(page)
    assert sender_named(database_url, account.distributor_id, "api") is None
    # And the form keeps what was typed
    assert 'value="api"' in page
    # Given an authenticated instance (gmail.send granted)
    main = authenticated_instance(portal, google, "main")
    # When a different From address is asked for, it is refused with who sends
    page = add_sender(
        portal,
        account.distributor_id,
        name="api",
        mode="gmail_api",
        instance_id=main,
        from_address="someone@else.example",
    )
    assert any(google.admin in e for e in errors(page)), flashes(page)
    # Then without one the sender sends as the instance's user, and works at once
    page = add_sender(
        portal, account.distributor_id, name="api", mode="gmail_api", instance_id=main
    )
    assert not errors(page), flashes(page)
    row = sender_named(database_url, account.distributor_id, "api")
    assert row.status == SenderStatus.OK and row.from_address == google.admin
    assert row.is_default  # the first sender is the default


def test_the_fields_of_a_sender_are_checked_and_each_problem_named(
    portal, account, google, database_url
):
    # A name that is not a slug, an unknown mode, an instance of another distributor
    other = make_account(database_url)
    theirs = Portal(portal.client.application.test_client()).sign_in(other)
    their_instance = theirs.create_instance("theirs", google.client_id, google.client_secret)
    page = add_sender(
        portal,
        account.distributor_id,
        name="Alerts Team",
        mode="smtp_xoauth2",
        instance_id=their_instance,
    )
    assert any("'alerts-team'" in e for e in errors(page)), flashes(page)
    assert any("Instance: choose one of this distributor's instances" in e for e in errors(page))
    page = add_sender(portal, account.distributor_id, name="x", mode="pigeon")
    assert any("'pigeon' is not a mode" in e for e in errors(page)), flashes(page)
    # A From address that is not one
    mine = portal.create_instance("main", google.client_id, google.client_secret)
    page = add_sender(
        portal,
        account.distributor_id,
        name="alerts",
        mode="smtp_xoauth2",
        instance_id=mine,
        from_address="not an address",
    )
    assert any(e.startswith("From address:") for e in errors(page)), flashes(page)
    # A name used twice by one distributor
    add_sender(portal, account.distributor_id, name="alerts", mode="smtp_xoauth2", instance_id=mine)
    page = add_sender(
        portal, account.distributor_id, name="alerts", mode="smtp_xoauth2", instance_id=mine
    )
    assert any("has a sender named 'alerts' already" in e for e in errors(page)), flashes(page)
    with session_scope(database_url) as s:
        assert (
            len(
                s.exec(
                    select(MailSender).where(MailSender.distributor_id == account.distributor_id)
                ).all()
            )
            == 1
        )


def test_a_service_account_sender_checks_its_key_like_an_instance_and_verifies_delegation(
    portal, account, google, database_url
):
    key = requests.post(
        f"{google.sandbox}/_sandbox/service-accounts", json={"project": google.project}, timeout=10
    ).json()
    # A key that is not one, and no address to impersonate: both named
    page = add_sender(
        portal,
        account.distributor_id,
        name="sa",
        mode="service_account",
        key={k: v for k, v in key.items() if k != "private_key"},
    )
    assert any("private_key missing" in e for e in errors(page)), flashes(page)
    assert any(e.startswith("From address: required") for e in errors(page)), flashes(page)
    page = add_sender(
        portal, account.distributor_id, name="sa", mode="service_account", from_address=google.admin
    )
    assert any("upload the service account's JSON key" in e for e in errors(page)), flashes(page)
    # A good key: stored encrypted, its public identifiers shown
    page = add_sender(
        portal,
        account.distributor_id,
        name="sa",
        mode="service_account",
        from_address=google.admin,
        key=key,
    )
    assert not errors(page), flashes(page)
    row = sender_named(database_url, account.distributor_id, "sa")
    assert row.status == SenderStatus.NOT_AUTHENTICATED
    assert key["private_key"] not in (row.service_account_key_enc or "")
    assert key["client_email"] in page and key["client_id"] in page and "PRIVATE KEY" not in page
    # Verify delegation before the Admin console delegates: Google's refusal is shown
    page = post_and_read(portal, account.distributor_id, f"/senders/{row.id}/refresh", {})
    assert any("unauthorized_client" in e for e in errors(page)), flashes(page)
    # Once https://mail.google.com/ is delegated, the sender works
    requests.post(
        f"{google.sandbox}/_sandbox/delegations",
        json={"reseller": google.reseller, "client_id": key["client_id"], "scopes": [MAIL]},
        timeout=10,
    ).raise_for_status()
    page = post_and_read(portal, account.distributor_id, f"/senders/{row.id}/refresh", {})
    assert not errors(page), flashes(page)
    row = sender_named(database_url, account.distributor_id, "sa")
    assert row.status == SenderStatus.OK and row.last_error is None


def test_one_default_sender_and_removing_it_hands_the_role_on(
    portal, account, google, database_url, secret_keys
):
    main = authenticated_instance(portal, google, "main")
    for name in ("first", "second"):
        add_sender(portal, account.distributor_id, name=name, mode="gmail_api", instance_id=main)
    first = sender_named(database_url, account.distributor_id, "first")
    second = sender_named(database_url, account.distributor_id, "second")
    assert first.is_default and not second.is_default
    # When the second is made the default
    page = post_and_read(portal, account.distributor_id, f"/senders/{second.id}/default", {})
    assert f'id="sender-{second.id}-default"' in page
    assert not sender_named(database_url, account.distributor_id, "first").is_default
    # When the default is removed, the other one takes over
    page = post_and_read(portal, account.distributor_id, f"/senders/{second.id}/remove", {})
    assert any("'first' is the default sender now" in t for _, t in flashes(page)), flashes(page)
    assert sender_named(database_url, account.distributor_id, "second") is None
    assert sender_named(database_url, account.distributor_id, "first").is_default
    assert audit_actions(database_url, account.distributor_id)[-4:] == [
        "mail_sender.create",
        "mail_sender.create",
        "mail_sender.default",
        "mail_sender.delete",
    ]


def test_removing_an_smtp_sender_revokes_its_mailbox_at_google(
    portal, account, google, database_url, secret_keys
):
    sender = smtp_sender(portal, account, google, database_url)
    consent(portal, account, sender.id, google)
    token = Vault([secret_keys]).decrypt(
        sender_named(database_url, account.distributor_id, "alerts").refresh_token_enc
    )
    page = post_and_read(portal, account.distributor_id, f"/senders/{sender.id}/remove", {})
    assert any("Google revoked the mailbox's access" in t for _, t in flashes(page)), flashes(page)
    refreshed = requests.post(
        f"{google.sandbox}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token,
            "client_id": google.client_id,
            "client_secret": google.client_secret,
        },
        timeout=10,
    )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    with session_scope(database_url) as s:  # no state of its consent keeps pointing at it
        assert all(r.sender_id != sender.id for r in s.exec(select(OAuthState)).all())


def test_send_a_test_message_queues_it_through_that_sender_and_hands_it_to_the_workers(
    portal, account, google, database_url, mailed
):
    sender = smtp_sender(portal, account, google, database_url)
    # Before the mailbox consents there is nothing to test
    page = portal.get(page_of(account.distributor_id)).text
    assert f'id="test-sender-{sender.id}"' not in page
    refused = post_and_read(portal, account.distributor_id, f"/senders/{sender.id}/test", {})
    assert any("not authenticated yet" in e for e in errors(refused)), flashes(refused)
    consent(portal, account, sender.id, google)
    # The To field starts with the signed-in user's address
    page = portal.get(page_of(account.distributor_id)).text
    assert f'id="test-to-{sender.id}"' in page and f'value="{account.email}"' in page
    # When the admin sends a test message to another address
    page = post_and_read(
        portal, account.distributor_id, f"/senders/{sender.id}/test", {"to": "Ops@Example.com"}
    )
    # Then it is queued through this very sender, and handed to the mail queue after commit
    assert any(kind == "ok" and "Test message queued" in t for kind, t in flashes(page))
    with session_scope(database_url) as s:
        message = s.exec(
            select(MailMessage).where(MailMessage.distributor_id == account.distributor_id)
        ).one()
        assert message.topic == NotifyTopic.TEST and message.sender_id == sender.id
        assert message.recipients == ["ops@example.com"]
        assert "'alerts'" in message.body and "SMTP with OAuth (XOAUTH2)" in message.body
        assert google.admin in message.body
        assert mailed == [message.id]
    # And the recent mail lists it, pending for now, without its body
    assert message.subject in page and 'data-state="pending"' in page
    assert "Asked for by" not in page
    assert "mail_sender.test" in audit_actions(database_url, account.distributor_id)


def test_the_platforms_senders_are_operators_own(app, account, google, database_url, mailed):
    operator = Portal(app.test_client()).sign_in(make_account(database_url, role="operator"))
    admin = Portal(app.test_client()).sign_in(account)
    main = authenticated_instance(admin, google, "main")
    # An operator adds a platform sender on Mail, through any distributor's instance
    page = add_sender(operator, None, name="platform", mode="gmail_api", instance_id=main)
    assert not errors(page), flashes(page)
    sender = sender_named(database_url, None, "platform")
    assert sender is not None and sender.distributor_id is None
    assert 'id="platform"' in page and f'id="sender-{sender.id}"' in page
    assert "mail_sender.create" in audit_actions(database_url, None)
    # A distributor's admin can neither see nor change them
    assert f'id="sender-{sender.id}"' not in admin.get("/dashboard/mail").text
    for action in ("default", "refresh", "test", "remove", "authenticate"):
        resp = admin.post(f"{forms_of(None)}/senders/{sender.id}/{action}")
        assert resp.status_code == 404, action
    resp = admin.post(f"{forms_of(None)}/senders", {"name": "mine", "mode": "gmail_api"})
    assert resp.status_code == 404
    assert sender_named(database_url, None, "platform") is not None
    # Nor reach them through their own distributor's forms
    resp = admin.post(f"{forms_of(account.distributor_id)}/senders/{sender.id}/remove")
    assert resp.status_code == 404


def test_the_key_is_never_shown_back(portal, account, google, database_url):
    key = requests.post(
        f"{google.sandbox}/_sandbox/service-accounts", json={"project": google.project}, timeout=10
    ).json()
    add_sender(
        portal,
        account.distributor_id,
        name="sa",
        mode="service_account",
        from_address=google.admin,
        key=key,
    )
    page = portal.get(page_of(account.distributor_id)).text
    assert json.dumps(key)[:40] not in page and key["private_key"][30:60] not in page


def test_changing_what_a_grant_means_drops_it(settings, tenant):
    from bss.crypto import vault_from_settings
    from bss.errors import ValidationFailed
    from bss.models import Instance
    from bss.notify import create_sender, update_sender

    vault = vault_from_settings(settings)
    with session_scope(settings.database_url) as s:
        instance = s.exec(select(Instance).where(Instance.distributor_id == tenant.id)).one()
        sender = create_sender(
            s,
            vault=vault,
            distributor_id=tenant.id,
            name="alerts",
            mode="smtp_xoauth2",
            instance_id=instance.id,
        )
        create_sender(
            s,
            vault=vault,
            distributor_id=tenant.id,
            name="other",
            mode="smtp_xoauth2",
            instance_id=instance.id,
        )
        # Given the mailbox consented
        sender.refresh_token_enc = vault.encrypt("1//mailbox")
        sender.status, sender.from_address = SenderStatus.OK, "alerts@example.com"
        # A new name keeps the grant
        assert update_sender(s, sender, vault=vault, name="alerts-2") == ["Renamed to 'alerts-2'."]
        assert sender.status == SenderStatus.OK and sender.refresh_token_enc
        # Another sender's name is refused, and nothing changes
        with pytest.raises(ValidationFailed, match="has a sender named 'other' already"):
            update_sender(s, sender, vault=vault, name="other")
        assert sender.name == "alerts-2"
        # Another address means another mailbox: its consent is dropped
        notes = update_sender(s, sender, vault=vault, from_address="Ops@Example.com")
        assert notes == ["Authenticate the mailbox again."]
        assert sender.from_address == "ops@example.com"
        assert sender.status == SenderStatus.NOT_AUTHENTICATED and sender.refresh_token_enc is None


def test_without_a_pop_up_the_consent_comes_back_to_the_page(portal, account, google, database_url):
    # Given a browser that blocks pop-ups: the form goes to Google in the page itself
    sender = smtp_sender(portal, account, google, database_url)
    resp = portal.post(
        f"{forms_of(account.distributor_id)}/senders/{sender.id}/authenticate", {"display": "page"}
    )
    callback = google_consent(resp.location, account=google.admin)
    # Then Google's answer brings the page back, saying how it went
    back = portal.get(path_and_query(callback))
    assert back.status_code == 302 and back.location == page_of(account.distributor_id)
    page = portal.get(back.location).text
    assert any(kind == "ok" and "is authenticated" in t for kind, t in flashes(page)), flashes(page)
