"""Authenticate Instance through the sandbox's consent page, and every way it can go wrong."""

from __future__ import annotations

import json

import requests
from sqlmodel import select

from bss.crypto import Vault
from bss.db import session_scope
from bss.gateway import REQUIRED_SCOPES
from bss.models import Instance, InstanceStatus, OAuthState
from tests.support.portal import Google, Portal
from tests.support.portal_pages import google_consent, path_and_query, query_of


def instance_row(database_url: str, instance_id: int) -> Instance:
    with session_scope(database_url) as s:
        found = s.get(Instance, instance_id)
        assert found is not None
        return found


def finish(portal: Portal, callback_url: str):
    """The browser following Google's redirect back to the portal."""
    return portal.get(path_and_query(callback_url))


def result_of(resp) -> dict:
    """The message the callback page posts to the instance page."""
    marker = '<script type="application/json" id="auth-result">'
    start = resp.text.index(marker) + len(marker)
    return json.loads(resp.text[start : resp.text.index("</script>", start)])


def test_authenticate_instance_stores_the_grant(
    portal: Portal, google: Google, database_url, secret_keys
):
    # Given an instance with the distributor's OAuth client
    instance_id = portal.create_instance("main", google.client_id, google.client_secret)

    # When the admin clicks Authenticate Instance and allows everything on Google's page
    auth_url = portal.start_authentication(instance_id)
    asked = query_of(auth_url)
    callback = google_consent(auth_url, account=google.admin)
    resp = finish(portal, callback)

    # Then the request asked for offline access with a fresh consent and PKCE
    assert asked["access_type"] == "offline" and asked["prompt"] == "consent"
    assert asked["include_granted_scopes"] == "true"
    assert asked["code_challenge_method"] == "S256" and asked["code_challenge"]
    # And the pop-up reports success to the instance page
    assert resp.status_code == 200
    result = result_of(resp)
    assert result["ok"] is True and result["instance_id"] == instance_id
    assert google.admin in result["message"]
    # And the instance is authenticated with who, when and which scopes; the token encrypted
    inst = instance_row(database_url, instance_id)
    assert inst.status == InstanceStatus.AUTHENTICATED
    assert inst.authenticated_as == google.admin and inst.authenticated_at is not None
    assert set(inst.granted_scopes.split()) == set(REQUIRED_SCOPES)
    refresh_token = Vault([secret_keys]).decrypt(inst.refresh_token_enc)
    assert refresh_token not in inst.refresh_token_enc
    # And the token works at Google
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
    assert token.status_code == 200
    # And the health panel shows it
    page = portal.get(f"/portal/instances/{instance_id}/health").text
    assert "Authenticated" in page and google.admin in page


def assert_nothing_stored(database_url: str, instance_id: int) -> None:
    inst = instance_row(database_url, instance_id)
    assert inst.status == InstanceStatus.NOT_AUTHENTICATED
    assert inst.refresh_token_enc is None
    assert inst.granted_scopes == "" and inst.authenticated_as is None


def failed(resp, reason: str) -> str:
    """The callback reported a failure with `reason`; returns its message."""
    result = result_of(resp)
    assert resp.status_code == 400
    assert result["ok"] is False, result
    assert result["reason"] == reason, result
    return result["message"]


def test_cancel_on_google_is_explained_and_stores_nothing(portal, google, database_url):
    instance_id = portal.create_instance("main", google.client_id, google.client_secret)
    callback = google_consent(
        portal.start_authentication(instance_id), account=google.admin, action="cancel"
    )
    message = failed(finish(portal, callback), "access_denied")
    assert "cancelled" in message and "Allow" in message
    assert_nothing_stored(database_url, instance_id)


def test_missing_scopes_are_named_and_nothing_is_stored(portal, google, database_url):
    instance_id = portal.create_instance("main", google.client_id, google.client_secret)
    # Given the admin unticks the Gmail permission on Google's page
    ticked = [s for s in REQUIRED_SCOPES if "gmail" not in s] + [
        "openid",
        "https://www.googleapis.com/auth/userinfo.email",
    ]
    callback = google_consent(
        portal.start_authentication(instance_id), account=google.admin, scopes=ticked
    )
    message = failed(finish(portal, callback), "scopes_missing")
    assert "https://www.googleapis.com/auth/gmail.send" in message
    assert "Gmail API" in message and "tick every box" in message
    assert "apps.order" not in message
    assert_nothing_stored(database_url, instance_id)


def test_callback_without_state(portal, google, database_url):
    instance_id = portal.create_instance("main", google.client_id, google.client_secret)
    callback = google_consent(portal.start_authentication(instance_id), account=google.admin)
    params = query_of(callback)
    resp = portal.get(
        "/Setup/SystemOptions/CloudAppsConfiguration.aspx/AuthenticateGoogleWorkspace",
        query_string={"code": params["code"]},
    )
    assert "no `state`" in failed(resp, "state_missing")
    assert_nothing_stored(database_url, instance_id)


def test_callback_with_an_unknown_state(portal, google, database_url):
    instance_id = portal.create_instance("main", google.client_id, google.client_secret)
    callback = google_consent(portal.start_authentication(instance_id), account=google.admin)
    params = query_of(callback) | {"state": "forged-state-value"}
    resp = portal.get(path_and_query(callback).split("?")[0], query_string=params)
    assert "unknown `state`" in failed(resp, "state_unknown")
    assert_nothing_stored(database_url, instance_id)


def test_an_expired_state_is_refused(portal, google, database_url):
    instance_id = portal.create_instance("main", google.client_id, google.client_secret)
    callback = google_consent(portal.start_authentication(instance_id), account=google.admin)
    # Given the admin came back more than 10 minutes later
    with session_scope(database_url) as s:
        for row in s.exec(select(OAuthState).where(OAuthState.instance_id == instance_id)):
            row.expires_at = row.created_at
            s.add(row)
    assert "expired" in failed(finish(portal, callback), "state_expired")
    assert_nothing_stored(database_url, instance_id)


def test_a_state_is_good_for_one_use_only(portal, google, database_url):
    instance_id = portal.create_instance("main", google.client_id, google.client_secret)
    callback = google_consent(portal.start_authentication(instance_id), account=google.admin)
    assert result_of(finish(portal, callback))["ok"] is True
    before = instance_row(database_url, instance_id).refresh_token_enc
    # When the same answer is replayed
    assert "already used" in failed(finish(portal, callback), "state_reused")
    # Then the stored grant is untouched
    assert instance_row(database_url, instance_id).refresh_token_enc == before


def test_a_state_started_by_another_user_in_another_browser(app, portal, google, database_url):
    from tests.support.portal import make_account

    instance_id = portal.create_instance("main", google.client_id, google.client_secret)
    callback = google_consent(portal.start_authentication(instance_id), account=google.admin)
    # When someone else, signed in elsewhere, opens the callback link
    other = Portal(app.test_client()).sign_in(make_account(database_url))
    assert "another browser" in failed(finish(other, callback), "state_other_user")
    assert_nothing_stored(database_url, instance_id)


def test_a_state_started_by_another_user_in_the_same_browser(app, portal, google, database_url):
    from tests.support.portal import make_account

    instance_id = portal.create_instance("main", google.client_id, google.client_secret)
    callback = google_consent(portal.start_authentication(instance_id), account=google.admin)
    # When another user signs in on the same browser (switching accounts), then finishes
    portal.sign_in(make_account(database_url))
    assert "another user" in failed(finish(portal, callback), "state_other_user")
    assert_nothing_stored(database_url, instance_id)


def test_a_state_started_for_another_instance_configuration(portal, google, database_url):
    instance_id = portal.create_instance("main", google.client_id, google.client_secret)
    callback = google_consent(portal.start_authentication(instance_id), account=google.admin)
    # When the instance's Client ID is changed before Google's answer comes back
    resp = portal.post(
        f"/portal/instances/{instance_id}/edit",
        {
            "name": "main",
            "mode": "oauth",
            "client_id": "123456789012-otherclient.apps.googleusercontent.com",
        },
    )
    assert resp.status_code == 302
    assert "another instance" in failed(finish(portal, callback), "state_other_instance")
    assert_nothing_stored(database_url, instance_id)


def test_a_state_this_browser_started_for_another_instance(portal, google, database_url):
    first = portal.create_instance("first", google.client_id, google.client_secret)
    second = portal.create_instance("second", google.client_id, google.client_secret)
    callback = google_consent(portal.start_authentication(first), account=google.admin)
    # Given this browser's record says the state belongs to the second instance
    with portal.client.session_transaction() as cookie:
        cookie["oauth_flows"] = {k: second for k in cookie["oauth_flows"]}
    assert "another instance" in failed(finish(portal, callback), "state_other_instance")
    assert_nothing_stored(database_url, first)
    assert_nothing_stored(database_url, second)


def test_no_refresh_token_is_explained(portal, google, database_url):
    instance_id = portal.create_instance("main", google.client_id, google.client_secret)
    # Given Google answers without a refresh token (as without offline access)
    auth_url = portal.start_authentication(instance_id).replace("access_type=offline", "")
    callback = google_consent(auth_url, account=google.admin)
    message = failed(finish(portal, callback), "no_refresh_token")
    assert "no refresh token" in message and "myaccount.google.com/permissions" in message
    assert_nothing_stored(database_url, instance_id)


def test_a_wrong_client_secret_is_named(portal, google, database_url):
    instance_id = portal.create_instance("main", google.client_id, "GOCSPX-not-the-secret")
    callback = google_consent(portal.start_authentication(instance_id), account=google.admin)
    message = failed(finish(portal, callback), "invalid_client")
    assert "Client Secret" in message
    assert_nothing_stored(database_url, instance_id)


def test_a_redirect_uri_google_refuses_is_shown_with_what_to_register(portal, google, database_url):
    # Given the OAuth client at Google lacks the portal's redirect URI
    instance_id = portal.create_instance("main", google.client_id, google.client_secret)
    requests.patch(
        f"{google.sandbox}/_sandbox/clients/{google.client_id}",
        json={"redirect_uris": ["https://elsewhere.example/cb"]},
        timeout=10,
    ).raise_for_status()
    auth_url = portal.start_authentication(instance_id)
    # Then Google shows its redirect_uri_mismatch page and never comes back
    page = requests.get(auth_url, timeout=10)
    assert page.status_code == 400 and "redirect_uri_mismatch" in page.text
    # And the instance page tells exactly which URI to register
    instance_page = portal.get(f"/portal/instances/{instance_id}").text
    expected = "http://localhost/Setup/SystemOptions/CloudAppsConfiguration.aspx/AuthenticateGoogleWorkspace"
    assert f'data-redirect-uri="{expected}"' in instance_page
    assert f'<code class="redirect-uri">{expected}</code>' in instance_page
    assert_nothing_stored(database_url, instance_id)


def test_full_page_redirect_when_the_popup_is_blocked(portal, google, database_url):
    instance_id = portal.create_instance("main", google.client_id, google.client_secret)
    callback = google_consent(
        portal.start_authentication(instance_id, display="page"), account=google.admin
    )
    resp = finish(portal, callback)
    # Then the browser goes back to the instance page, which says it worked
    assert resp.status_code == 302
    assert resp.location.endswith(f"/portal/instances/{instance_id}")
    page = portal.get(resp.location).text
    assert f"is authenticated as {google.admin}" in page
    assert instance_row(database_url, instance_id).status == InstanceStatus.AUTHENTICATED


def test_reauthentication_requeues_jobs_waiting_for_it(app, portal, google, database_url):
    from bss.models import Job, JobState

    instance_id = portal.create_instance("main", google.client_id, google.client_secret)
    inst = instance_row(database_url, instance_id)
    with session_scope(database_url) as s:
        job = Job(
            distributor_id=inst.distributor_id,
            instance_id=instance_id,
            operation="customer.create",
            request_hash="0" * 64,
            state=JobState.WAITING_REAUTH,
        )
        s.add(job)
        job_id = job.id
    sent: list[str] = []
    real_send = app.extensions["bss.send"]
    app.extensions["bss.send"] = lambda jid: (sent.append(jid), real_send(jid))
    callback = google_consent(portal.start_authentication(instance_id), account=google.admin)
    assert result_of(finish(portal, callback))["ok"] is True
    # Then the job no longer waits for its instance, and is sent to the workers (one of them
    # may have taken it already)
    with session_scope(database_url) as s:
        assert s.get(Job, job_id).state != JobState.WAITING_REAUTH
    assert sent == [job_id]


def test_a_session_that_ended_meanwhile_is_told_to_sign_in_again(portal, google, database_url):
    from sqlmodel import delete

    from bss.models import UserSession

    instance_id = portal.create_instance("main", google.client_id, google.client_secret)
    callback = google_consent(portal.start_authentication(instance_id), account=google.admin)
    # Given the portal session expired while the admin was on Google's page
    with session_scope(database_url) as s:
        s.exec(delete(UserSession))
    assert "sign in again" in failed(finish(portal, callback), "signed_out")
    assert_nothing_stored(database_url, instance_id)


def test_one_redirect_uri_per_public_base_url(
    tmp_path, database_url, secret_keys, redis_url, google
):
    from tests.support.portal import make_account, portal_settings
    from web import create_app

    # Given a portal reachable under two host names
    settings = portal_settings(
        tmp_path,
        database_url,
        secret_keys,
        redis_url,
        google,
        "http://localhost,https://portal.example",
    )
    portal = Portal(create_app(settings).test_client()).sign_in(make_account(database_url))
    instance_id = portal.create_instance("main", google.client_id, google.client_secret)
    page = portal.get(f"/portal/instances/{instance_id}").text
    path = "/Setup/SystemOptions/CloudAppsConfiguration.aspx/AuthenticateGoogleWorkspace"
    # Then the page lists the Authorized Redirect URI of each
    assert f'<code class="redirect-uri">http://localhost{path}</code>' in page
    assert f'<code class="redirect-uri">https://portal.example{path}</code>' in page
    # And Google is asked to come back to the host the user is on
    assert query_of(portal.start_authentication(instance_id))["redirect_uri"] == (
        f"http://localhost{path}"
    )
