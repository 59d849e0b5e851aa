"""tokeninfo: what Google says an access token or an id token stands for, v2 and v3."""

from __future__ import annotations

import json

import google.auth.transport.requests
import pytest
import requests
from googleapiclient.errors import HttpError

from .helpers import ORDER

EMAIL = "https://www.googleapis.com/auth/userinfo.email"
INVALID = {"error": "invalid_token", "error_description": "Invalid Value"}


def fresh(world, scopes):
    creds = world.credentials(scopes)
    creds.refresh(google.auth.transport.requests.Request())
    return creds


def v3(world, how="get", **params):
    url = world.origin + "/oauth2/v3/tokeninfo"
    if how == "get":
        return requests.get(url, params=params, timeout=10)
    return requests.post(url, data=params, timeout=10)


def admin_id(world) -> str:
    users = world.sandbox.state()["users"]
    return next(u["id"] for u in users if u["primaryEmail"] == world.admin)


def test_v3_describes_an_access_token_with_googles_field_names(world):
    # Given an access token holding the email scope and a work scope, from a refresh token
    creds = fresh(world, ["email", ORDER])

    # When a tool asks tokeninfo v3 about it
    answer = v3(world, access_token=creds.token)

    # Then Google's v3 fields come back, every value a string
    assert answer.status_code == 200
    info = answer.json()
    assert set(info) == {
        "azp",
        "aud",
        "sub",
        "scope",
        "exp",
        "expires_in",
        "email",
        "email_verified",
        "access_type",
    }
    assert all(isinstance(v, str) for v in info.values())
    assert info["azp"] == info["aud"] == world.client["client_id"]
    assert info["sub"] == admin_id(world)
    assert set(info["scope"].split()) == {EMAIL, ORDER}
    assert 3590 <= int(info["expires_in"]) <= 3599
    assert (info["email"], info["email_verified"]) == (world.admin, "true")
    assert info["access_type"] == "offline"


def test_v3_without_identity_scopes_names_no_user_and_follows_the_clock(world):
    # Given an access token for a work scope only
    creds = fresh(world, [ORDER])

    # When ten minutes pass on the sandbox clock and the tool POSTs the token as a form
    world.sandbox.post("/_sandbox/clock", {"advance_seconds": 600})
    info = v3(world, how="post", access_token=creds.token).json()

    # Then no email or subject is disclosed and the expiry moved with the clock
    assert set(info) == {"azp", "aud", "scope", "exp", "expires_in", "access_type"}
    assert 2990 <= int(info["expires_in"]) <= 2999


def test_v2_through_the_discovery_client_as_gam_calls_it(world):
    # Given GAM's call: the oauth2 v2 service's tokeninfo method
    creds = fresh(world, ["openid", "email", ORDER])
    oauth2 = world.service("oauth2", "v2", credentials=creds)

    # When it asks about its access token
    info = oauth2.tokeninfo(access_token=creds.token).execute()

    # Then the v2 names and JSON types come back
    assert set(info) == {
        "issued_to",
        "audience",
        "user_id",
        "scope",
        "expires_in",
        "email",
        "verified_email",
        "access_type",
    }
    assert info["issued_to"] == info["audience"] == world.client["client_id"]
    assert info["user_id"] == admin_id(world)
    assert isinstance(info["expires_in"], int) and 3590 <= info["expires_in"] <= 3599
    assert (info["email"], info["verified_email"]) == (world.admin, True)
    assert set(info["scope"].split()) == {"openid", EMAIL, ORDER}


def test_id_tokens_on_both_versions(world):
    creds = fresh(world, ["openid", "email", ORDER])

    # v3 answers with the token's claims as strings, and its header's alg and kid
    claims = v3(world, id_token=creds.id_token).json()
    assert claims["iss"] == "https://accounts.google.com"
    assert claims["aud"] == claims["azp"] == world.client["client_id"]
    assert (claims["email"], claims["email_verified"]) == (world.admin, "true")
    assert claims["alg"] == "RS256" and claims["kid"] and claims["typ"] == "JWT"
    assert all(isinstance(v, str) for v in claims.values())

    # v2 answers with its own names
    info = requests.post(
        world.origin + "/oauth2/v2/tokeninfo", params={"id_token": creds.id_token}, timeout=10
    ).json()
    assert info["issued_to"] == info["audience"] == world.client["client_id"]
    assert info["user_id"] == claims["sub"]
    assert (info["email"], info["verified_email"]) == (world.admin, True)
    assert 0 < info["expires_in"] <= 3600


@pytest.mark.parametrize("path", ["/oauth2/v3/tokeninfo", "/oauth2/v2/tokeninfo"])
def test_dead_or_unknown_tokens_get_googles_invalid_value(world, path):
    # Given a token that expired, one that was revoked, and one minted after the clock moved
    expired = fresh(world, [ORDER])
    revoked = fresh(world, [ORDER])
    requests.post(world.origin + "/revoke", data={"token": revoked.token}, timeout=10)
    world.sandbox.post("/_sandbox/clock", {"advance_seconds": 3599})
    creds = fresh(world, [ORDER])

    for params in (
        {"access_token": "ya29.unknown"},
        {"access_token": expired.token},
        {"access_token": revoked.token},
        {"id_token": "not.a.jwt"},
        {},
    ):
        answer = requests.get(world.origin + path, params=params, timeout=10)
        assert (answer.status_code, answer.json()) == (400, INVALID), params

    # And a live token still answers
    assert requests.get(world.origin + path, params={"access_token": creds.token}, timeout=10).ok


def test_gam_sees_invalid_value_through_the_discovery_client(world):
    oauth2 = world.service("oauth2", "v2", credentials=fresh(world, [ORDER]))

    with pytest.raises(HttpError) as excinfo:
        oauth2.tokeninfo(access_token="ya29.unknown").execute()

    # GAM recognises exactly this body (error_description "Invalid Value") as GAPI.INVALID
    assert excinfo.value.resp.status == 400
    assert json.loads(excinfo.value.content) == INVALID


def test_userinfo_v2_uses_its_own_field_names(world):
    # Given a token with the email and profile scopes
    creds = fresh(world, ["email", "profile"])
    headers = {"Authorization": f"Bearer {creds.token}"}

    # Then the OIDC userinfo says sub/email_verified, and oauth2 v2's says id/verified_email
    oidc = requests.get(world.origin + "/v1/userinfo", headers=headers, timeout=10).json()
    v2 = world.service("oauth2", "v2", credentials=creds).userinfo().get().execute()
    assert oidc["sub"] == v2["id"] == admin_id(world)
    assert oidc["email_verified"] is v2["verified_email"] is True
    assert "sub" not in v2 and "email_verified" not in v2
    assert v2["name"] and v2["picture"].startswith("https://")
