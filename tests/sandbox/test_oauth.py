"""OAuth 2.0 and OIDC: google-auth-oauthlib's Flow against the consent page and /token."""

from __future__ import annotations

import google.auth.transport.requests
import pytest
import requests
from google.auth.exceptions import RefreshError
from google.oauth2 import id_token
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow
from googleapiclient.errors import HttpError

from .helpers import ORDER, REDIRECT_URI, USER, consent, consent_page, query_of

EMAIL_SCOPE = "https://www.googleapis.com/auth/userinfo.email"


@pytest.fixture(autouse=True)
def _oauthlib_over_http(monkeypatch):
    # The sandbox speaks plain HTTP; Google may grant fewer scopes than asked.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.setenv("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")


def flow_for(world, scopes):
    return Flow.from_client_config({"web": world.client}, scopes=scopes, redirect_uri=REDIRECT_URI)


def test_consent_flow_with_pkce_gives_working_offline_credentials(world):
    # Given the reseller's admin goes through our "connect Google" flow
    flow = flow_for(world, ["openid", "email", ORDER])
    url, state = flow.authorization_url(access_type="offline", prompt="consent")
    assert "code_challenge=" in url

    # When they allow on the consent page
    location = consent(world.origin, url, account=world.admin)

    # Then Google redirects back with a code and our state
    query = query_of(location)
    assert location.startswith(REDIRECT_URI)
    assert query["state"] == state
    flow.fetch_token(code=query["code"])
    creds = flow.credentials

    # And the credentials hold a refresh token, the granted scopes and a verifiable id_token
    assert creds.refresh_token
    assert set(creds.granted_scopes) == {"openid", EMAIL_SCOPE, ORDER}
    request = google.auth.transport.requests.Request()
    claims = id_token.verify_token(
        creds.id_token,
        request,
        audience=world.client["client_id"],
        certs_url=world.origin + "/oauth2/v3/certs",
    )
    assert claims["iss"] == "https://accounts.google.com"
    assert (claims["email"], claims["hd"], claims["email_verified"]) == (
        world.admin,
        world.reseller,
        True,
    )

    # And they call the Reseller API
    reseller = world.service("reseller", "v1", credentials=creds)
    with pytest.raises(HttpError) as excinfo:
        reseller.customers().get(customerId="free.example").execute()
    assert excinfo.value.resp.status == 404

    # And userinfo knows the account
    info = requests.get(
        world.origin + "/v1/userinfo",
        timeout=10,
        headers={"Authorization": f"Bearer {creds.token}"},
    ).json()
    assert info["email"] == world.admin and info["sub"] == claims["sub"]


def test_cancel_redirects_with_access_denied(world):
    flow = flow_for(world, [ORDER])
    url, state = flow.authorization_url(access_type="offline", state="xyz")
    location = consent(world.origin, url, action="cancel")
    assert query_of(location) == {"error": "access_denied", "state": "xyz"}


def test_unknown_client_shows_invalid_client_page(world):
    url = (
        f"{world.origin}/o/oauth2/v2/auth?client_id=nobody.apps.googleusercontent.com"
        f"&redirect_uri={REDIRECT_URI}&response_type=code&scope={ORDER}"
    )
    page, _ = consent_page(url)
    assert page.status_code == 401
    assert "Error 401: invalid_client" in page.text


def test_unregistered_redirect_uri_shows_redirect_uri_mismatch_page(world):
    flow = Flow.from_client_config(
        {"web": world.client}, scopes=[ORDER], redirect_uri="http://localhost:9999/elsewhere"
    )
    url, _ = flow.authorization_url()
    page, _ = consent_page(url)
    assert page.status_code == 400
    assert "Error 400: redirect_uri_mismatch" in page.text
    assert "redirect_uri=http://localhost:9999/elsewhere" in page.text


def test_registering_the_redirect_uri_fixes_the_mismatch(world, sandbox):
    other = "http://localhost:9999/elsewhere"
    sandbox.call(
        "PATCH",
        f"/_sandbox/clients/{world.client['client_id']}",
        {"redirect_uris": [REDIRECT_URI, other]},
    )
    flow = Flow.from_client_config({"web": world.client}, scopes=[ORDER], redirect_uri=other)
    url, _ = flow.authorization_url()
    assert "code" in query_of(consent(world.origin, url))


def test_granular_consent_grants_only_the_ticked_scopes(world):
    # Given the app asks for the Reseller and Directory scopes
    flow = flow_for(world, [ORDER, USER])
    url, _ = flow.authorization_url(access_type="offline", prompt="consent")

    # When the admin unticks Directory
    query = query_of(consent(world.origin, url, untick=(USER,)))
    token = flow.fetch_token(code=query["code"])

    # Then only the Reseller scope is granted, and Directory calls are refused
    assert token["scope"] == [ORDER]
    directory = world.service("admin", "directory_v1", credentials=flow.credentials)
    with pytest.raises(HttpError) as excinfo:
        directory.users().get(userKey=world.admin).execute()
    assert excinfo.value.resp.status == 403
    assert b"insufficientPermissions" in excinfo.value.content


def test_refresh_token_only_with_offline_access_and_a_shown_consent(world):
    session = requests.Session()
    # Online access (the library asks for offline unless told otherwise): no refresh token
    flow = flow_for(world, [ORDER])
    url, _ = flow.authorization_url(access_type="online")
    assert "refresh_token" not in flow.fetch_token(
        code=query_of(consent(world.origin, url, session=session))["code"]
    )

    # Offline on a first consent for these scopes: a refresh token
    flow = flow_for(world, [ORDER, USER])
    url, _ = flow.authorization_url(access_type="offline")
    assert "refresh_token" in flow.fetch_token(
        code=query_of(consent(world.origin, url, session=session))["code"]
    )

    # Offline again without prompt=consent: Google skips the page, so no refresh token
    flow = flow_for(world, [ORDER])
    url, _ = flow.authorization_url(access_type="offline", login_hint=world.admin)
    page, _ = consent_page(url, session)
    assert page.status_code == 302
    assert "refresh_token" not in flow.fetch_token(code=query_of(page.headers["Location"])["code"])

    # In a fresh browser the account must be picked, but that is no consent: no refresh token
    flow = flow_for(world, [ORDER])
    url, _ = flow.authorization_url(access_type="offline")
    fresh = query_of(consent(world.origin, url, account=world.admin))
    assert "refresh_token" not in flow.fetch_token(code=fresh["code"])

    # Unless the app asks for consent again
    flow = flow_for(world, [ORDER])
    url, _ = flow.authorization_url(access_type="offline", prompt="consent")
    again = query_of(consent(world.origin, url, account=world.admin))
    assert "refresh_token" in flow.fetch_token(code=again["code"])


def _code(world, **kwargs):
    flow = flow_for(world, [ORDER])
    url, _ = flow.authorization_url(access_type="offline", prompt="consent", **kwargs)
    return flow, query_of(consent(world.origin, url))["code"]


def test_code_is_single_use_and_pkce_is_checked(world):
    flow, code = _code(world)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": world.client["client_id"],
        "client_secret": world.client["client_secret"],
    }
    missing = requests.post(world.origin + "/token", data=form, timeout=10)
    assert missing.status_code == 400
    assert missing.json() == {
        "error": "invalid_grant",
        "error_description": "Missing code verifier.",
    }

    flow, code = _code(world)
    form.update(code=code, code_verifier="x" * 50)
    wrong = requests.post(world.origin + "/token", data=form, timeout=10)
    assert wrong.json()["error_description"] == "Invalid code verifier."

    flow, code = _code(world)
    form.update(code=code, code_verifier=flow.code_verifier)
    assert requests.post(world.origin + "/token", data=form, timeout=10).status_code == 200
    again = requests.post(world.origin + "/token", data=form, timeout=10)
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


def test_client_credentials_as_basic_or_form_and_a_wrong_secret(world, sandbox):
    minted = sandbox.tokens(world.client["client_id"], world.admin, [ORDER])
    form = {"grant_type": "refresh_token", "refresh_token": minted["refresh_token"]}
    basic = (world.client["client_id"], world.client["client_secret"])
    by_basic = requests.post(world.origin + "/token", data=form, auth=basic, timeout=10)
    assert by_basic.status_code == 200 and "refresh_token" not in by_basic.json()
    by_form = requests.post(
        world.origin + "/token",
        timeout=10,
        data=dict(form, client_id=basic[0], client_secret=basic[1]),
    )
    assert by_form.json()["scope"] == ORDER
    wrong = requests.post(world.origin + "/token", data=form, auth=(basic[0], "nope"), timeout=10)
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")


DEAD = {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}


def _refresh(world, refresh_token):
    return requests.post(
        world.origin + "/token",
        timeout=10,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": world.client["client_id"],
            "client_secret": world.client["client_secret"],
        },
    )


def test_revoking_the_access_token_revokes_the_refresh_token(world, sandbox):
    minted = sandbox.tokens(world.client["client_id"], world.admin, [ORDER])
    assert (
        requests.post(
            world.origin + "/revoke", data={"token": minted["access_token"]}, timeout=10
        ).status_code
        == 200
    )
    dead = _refresh(world, minted["refresh_token"])
    assert (dead.status_code, dead.json()) == (400, DEAD)


def test_google_auth_reports_a_revoked_refresh_token_as_invalid_grant(world, sandbox):
    creds = world.credentials([ORDER])
    requests.post(world.origin + "/revoke", data={"token": creds.refresh_token}, timeout=10)
    with pytest.raises(RefreshError) as excinfo:
        creds.refresh(google.auth.transport.requests.Request())
    assert "invalid_grant" in str(excinfo.value)


def test_testing_apps_refresh_tokens_die_after_seven_days(sandbox):
    from .helpers import World

    world = World.seed(sandbox, publishing_status="testing")
    minted = sandbox.tokens(world.client["client_id"], world.admin, [ORDER])
    sandbox.post("/_sandbox/clock", {"advance_seconds": 6 * 24 * 3600})
    assert _refresh(world, minted["refresh_token"]).status_code == 200
    sandbox.post("/_sandbox/clock", {"advance_seconds": 24 * 3600 + 1})
    assert _refresh(world, minted["refresh_token"]).json() == DEAD


def test_the_101st_refresh_token_evicts_the_oldest(world, sandbox):
    first = sandbox.tokens(world.client["client_id"], world.admin, [ORDER])["refresh_token"]
    second = sandbox.tokens(world.client["client_id"], world.admin, [ORDER])["refresh_token"]
    for _ in range(99):
        sandbox.tokens(world.client["client_id"], world.admin, [ORDER])
    assert _refresh(world, first).json() == DEAD
    assert _refresh(world, second).status_code == 200


def test_expired_access_tokens_are_refreshed_by_the_client(world, sandbox):
    # Given a service that has fetched an access token
    reseller = world.service("reseller", "v1")
    with pytest.raises(HttpError):
        reseller.customers().get(customerId="free.example").execute()

    # When an hour passes at Google
    sandbox.post("/_sandbox/clock", {"advance_seconds": 3600})

    # Then the next call gets 401, the library refreshes, and the retry reaches the API
    with pytest.raises(HttpError) as excinfo:
        reseller.customers().get(customerId="free.example").execute()
    assert excinfo.value.resp.status == 404
    statuses = [c["status"] for c in sandbox.calls()]
    assert statuses[-4:] == [404, 401, 200, 404]


def test_openid_configuration_and_jwks(world):
    config = requests.get(world.origin + "/.well-known/openid-configuration", timeout=10).json()
    # The issuer is Google's (a setting); the endpoints stay on the sandbox
    assert config["issuer"] == "https://accounts.google.com"
    assert config["token_endpoint"] == world.origin + "/token"
    keys = requests.get(config["jwks_uri"], timeout=10).json()["keys"]
    assert keys and keys[0]["alg"] == "RS256" and keys[0]["use"] == "sig"


def test_internal_apps_refuse_accounts_outside_the_organization(sandbox):
    from .helpers import World

    world = World.seed(sandbox, user_type="internal")
    sandbox.post(
        "/_sandbox/customers",
        {
            "reseller": None,
            "customerDomain": "outside.example",
            "admin_email": "boss@outside.example",
        },
    )
    flow = flow_for(world, [ORDER])
    url, _ = flow.authorization_url()
    page, form = consent_page(url)
    fields = list(form.fields) + [
        ("scope", ORDER),
        ("account", "boss@outside.example"),
        ("action", "allow"),
    ]
    refused = requests.post(
        world.origin + form.action, data=fields, timeout=10, allow_redirects=False
    )
    assert refused.status_code == 403 and "Error 403: org_internal" in refused.text
    assert "code" in query_of(consent(world.origin, url, account=world.admin))


def test_user_credentials_from_the_control_api_refresh_with_google_auth(world):
    creds = world.credentials([ORDER])
    assert isinstance(creds, Credentials)
    creds.refresh(google.auth.transport.requests.Request())
    assert creds.valid and creds.token.startswith("ya29.")
