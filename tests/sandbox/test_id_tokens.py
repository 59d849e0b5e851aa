"""ID tokens as Google issues them: Google's issuer, whenever an identity scope is granted."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlsplit

import google.auth.transport.requests
import pytest
import requests
from google.oauth2 import id_token
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow

from .conftest import free_port, start_sandbox, stop_sandbox
from .helpers import ORDER, REDIRECT_URI, Sandbox, World, consent, query_of

GOOGLE_ISSUER = "https://accounts.google.com"
EMAIL = "https://www.googleapis.com/auth/userinfo.email"
PROFILE = "https://www.googleapis.com/auth/userinfo.profile"


@pytest.fixture(autouse=True)
def _oauthlib_over_http(monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.setenv("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")


class GoogleHostsToSandbox(google.auth.transport.requests.Request):
    """A google-auth transport that sends Google's own hosts to the sandbox, path unchanged,
    the way a test points a third-party tool at it without touching the tool's code."""

    def __init__(self, origin: str) -> None:
        super().__init__()
        self.origin = origin
        self.seen: list[str] = []

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
        parts = urlsplit(url)
        if parts.hostname in ("www.googleapis.com", "oauth2.googleapis.com"):
            url = self.origin + parts.path + (f"?{parts.query}" if parts.query else "")
        self.seen.append(url)
        return super().__call__(url, method, body, headers, timeout, **kwargs)


def signed_in(world: World, scopes: list[str]) -> Credentials:
    """Credentials from the consent flow, as a web app gets them."""
    flow = Flow.from_client_config({"web": world.client}, scopes=scopes, redirect_uri=REDIRECT_URI)
    url, _ = flow.authorization_url(access_type="offline", prompt="consent")
    flow.fetch_token(code=query_of(consent(world.origin, url, account=world.admin))["code"])
    return flow.credentials


def refreshed(world: World, scopes: list[str]) -> Credentials:
    """Credentials minted for the admin and then refreshed through /token."""
    creds = world.credentials(scopes)
    creds.refresh(google.auth.transport.requests.Request())
    return creds


def at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def test_id_token_passes_google_auths_own_verification(world):
    # Given the admin signed in with openid, email and profile
    creds = signed_in(world, ["openid", "email", "profile", ORDER])

    # When a third party verifies the id token with google-auth against the X.509 certs
    claims = id_token.verify_token(
        creds.id_token,
        google.auth.transport.requests.Request(),
        audience=world.client["client_id"],
        certs_url=world.origin + "/oauth2/v1/certs",
    )

    # Then it carries Google's issuer and the claims Google puts in
    assert claims["iss"] == GOOGLE_ISSUER
    assert claims["aud"] == claims["azp"] == world.client["client_id"]
    assert claims["at_hash"] == at_hash(creds.token)
    assert claims["exp"] > claims["iat"]
    users = world.sandbox.state()["users"]
    assert claims["sub"] == next(u["id"] for u in users if u["primaryEmail"] == world.admin)
    assert (claims["email"], claims["email_verified"]) == (world.admin, True)
    assert claims["name"] and claims["given_name"] and claims["picture"].startswith("https://")

    # And verify_oauth2_token (what GAM calls), with Google's certs URL sent to the sandbox,
    # accepts it too: it insists on iss being accounts.google.com
    transport = GoogleHostsToSandbox(world.origin)
    verified = id_token.verify_oauth2_token(
        creds.id_token, transport, audience=world.client["client_id"], clock_skew_in_seconds=10
    )
    assert verified["email"] == world.admin
    assert transport.seen == [world.origin + "/oauth2/v1/certs"]


def test_an_id_token_signed_elsewhere_is_refused(world):
    # Given an id token whose signature does not match the sandbox's key
    creds = signed_in(world, ["openid", "email"])
    header, payload, signature = creds.id_token.split(".")
    forged = ".".join(
        [header, payload, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")]
    )

    # Then google-auth refuses it
    with pytest.raises(ValueError):
        id_token.verify_oauth2_token(forged, GoogleHostsToSandbox(world.origin))


@pytest.mark.parametrize(
    ("scopes", "present", "absent"),
    [
        (["openid"], {"sub", "at_hash"}, {"email", "name", "picture"}),
        ([EMAIL], {"sub", "email", "email_verified"}, {"name", "picture"}),
        (["email"], {"email", "email_verified"}, {"name"}),
        ([PROFILE], {"sub", "name", "picture", "given_name"}, {"email", "email_verified"}),
    ],
)
def test_refresh_brings_an_id_token_whenever_an_identity_scope_is_held(
    world, scopes, present, absent
):
    # Given a refresh token holding an identity scope beside a work scope
    creds = refreshed(world, [*scopes, ORDER])

    # Then the refresh answered with an id token whose claims follow the scopes
    assert creds.id_token
    claims = id_token.verify_oauth2_token(
        creds.id_token, GoogleHostsToSandbox(world.origin), audience=world.client["client_id"]
    )
    assert present <= claims.keys()
    assert not (absent & claims.keys())
    assert claims["at_hash"] == at_hash(creds.token)


def test_no_id_token_without_an_identity_scope(world):
    # Given tokens for work scopes only
    creds = refreshed(world, [ORDER])

    # Then no id token comes back, on refresh as at the code exchange
    assert creds.id_token is None
    assert creds.token
    code_creds = signed_in(world, [ORDER])
    assert code_creds.id_token is None


def test_discovery_names_googles_issuer_and_sandbox_endpoints(world):
    config = requests.get(world.origin + "/.well-known/openid-configuration", timeout=10).json()
    assert config["issuer"] == GOOGLE_ISSUER
    for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        assert config[key].startswith(world.origin + "/"), key


def test_the_issuer_is_a_setting(tmp_path):
    # Given a sandbox started with --issuer set to its own origin
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    proc = start_sandbox(port, tmp_path / "sandbox.log", "--quiet", "--issuer", origin)
    try:
        world = World.seed(Sandbox(origin))

        # Then discovery and id tokens both name that issuer
        config = requests.get(origin + "/.well-known/openid-configuration", timeout=10).json()
        assert config["issuer"] == origin
        creds = refreshed(world, ["openid", "email", ORDER])
        claims = id_token.verify_token(
            creds.id_token,
            google.auth.transport.requests.Request(),
            audience=world.client["client_id"],
            certs_url=config["jwks_uri"],
        )
        assert claims["iss"] == origin

        # And google-auth's Google-only check refuses such a token
        with pytest.raises(Exception, match="Wrong issuer"):
            id_token.verify_oauth2_token(creds.id_token, GoogleHostsToSandbox(origin))
    finally:
        stop_sandbox(proc)
