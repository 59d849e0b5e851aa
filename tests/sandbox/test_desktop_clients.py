"""Desktop app (installed) OAuth clients: any loopback redirect, as GAM's own flow uses."""

from __future__ import annotations

import queue
import threading

import google.auth.transport.requests
import pytest
import requests
from google_auth_oauthlib.flow import Flow, InstalledAppFlow

from .helpers import ORDER, consent, consent_page, query_of

INSTALLED_KEYS = {
    "client_id",
    "project_id",
    "auth_uri",
    "token_uri",
    "auth_provider_x509_cert_url",
    "client_secret",
    "redirect_uris",
}


@pytest.fixture(autouse=True)
def _oauthlib_over_http(monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.setenv("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")


@pytest.fixture
def desktop(world) -> dict:
    """Given a Desktop app client downloaded from the Cloud console."""
    downloaded = world.sandbox.post(
        "/_sandbox/clients", {"project": world.project, "name": "GAM", "type": "installed"}
    )
    assert set(downloaded) == {"installed"}
    return downloaded["installed"]


class PromptingFlow(InstalledAppFlow):
    """InstalledAppFlow that hands its authorization URL to the test (GAM overrides the same
    method to shorten the URL) instead of opening a browser."""

    urls: queue.Queue

    def authorization_url(self, **kwargs):
        url, state = super().authorization_url(**kwargs)
        self.urls.put(url)
        return url, state


def test_desktop_client_json_is_what_the_console_downloads(world, desktop):
    assert set(desktop) == INSTALLED_KEYS
    assert desktop["redirect_uris"] == ["http://localhost"]
    assert desktop["token_uri"] == world.origin + "/token"
    assert desktop["project_id"] == world.project
    assert desktop["client_id"].endswith(".apps.googleusercontent.com")


def test_installed_app_flow_on_a_local_server_gets_working_credentials(world, desktop):
    # Given a tool running InstalledAppFlow's local server on a port the OS picked
    flow = PromptingFlow.from_client_config({"installed": desktop}, scopes=["openid", ORDER])
    flow.urls = queue.Queue()
    result: dict = {}

    def run() -> None:
        try:
            result["creds"] = flow.run_local_server(
                port=0, open_browser=False, timeout_seconds=20, access_type="offline"
            )
        except Exception as exc:  # reported by the assertion below
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    url = flow.urls.get(timeout=10)
    assert "redirect_uri=http%3A%2F%2Flocalhost%3A" in url

    # When the admin allows on the consent page and the browser follows the redirect
    location = consent(world.origin, url, account=world.admin)
    assert location.startswith(flow.redirect_uri) and "code=" in location
    landing = requests.get(location, timeout=10)
    thread.join(timeout=20)

    # Then the tool holds offline credentials that work
    assert landing.status_code == 200
    assert "error" not in result, result.get("error")
    creds = result["creds"]
    assert creds.refresh_token and creds.id_token
    reseller = world.service("reseller", "v1", credentials=creds)
    assert reseller.subscriptions().list().execute().get("subscriptions", []) == []
    creds.refresh(google.auth.transport.requests.Request())
    assert creds.token


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:8080/",  # GAM's
        "http://127.0.0.1:41234",
        "http://localhost:9004/oauth/done?x=1",
        "http://[::1]:5555/",
        "http://localhost",
    ],
)
def test_desktop_clients_accept_any_loopback_redirect(world, desktop, redirect_uri):
    flow = Flow.from_client_config(
        {"installed": desktop}, scopes=[ORDER], redirect_uri=redirect_uri
    )
    url, _ = flow.authorization_url(access_type="offline")

    location = consent(world.origin, url, account=world.admin)

    assert location.startswith(redirect_uri)
    flow.fetch_token(code=query_of(location)["code"])
    assert flow.credentials.refresh_token


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://example.com:8080/",
        "https://127.0.0.1:8080/",
        "http://127.0.0.1.example.com:8080/",
        "http://10.0.0.5:8080/",
        "urn:ietf:wg:oauth:2.0:oob",
    ],
)
def test_desktop_clients_refuse_anything_else(desktop, redirect_uri):
    flow = Flow.from_client_config(
        {"installed": desktop}, scopes=[ORDER], redirect_uri=redirect_uri
    )
    url, _ = flow.authorization_url()

    page, _ = consent_page(url)

    assert page.status_code == 400
    assert "redirect_uri_mismatch" in page.text


def test_web_clients_still_match_exactly(world):
    # Given the web client, whose only redirect URI is on port 8080
    flow = Flow.from_client_config(
        {"web": world.client}, scopes=[ORDER], redirect_uri="http://localhost:9999/oauth/callback"
    )
    url, _ = flow.authorization_url()

    # Then another loopback port is refused
    page, _ = consent_page(url)
    assert page.status_code == 400 and "redirect_uri_mismatch" in page.text


def test_token_endpoint_wants_the_redirect_uri_the_code_was_issued_for(world, desktop):
    # Given a code issued to one loopback port
    flow = Flow.from_client_config(
        {"installed": desktop}, scopes=[ORDER], redirect_uri="http://127.0.0.1:8080/"
    )
    url, _ = flow.authorization_url()
    code = query_of(consent(world.origin, url, account=world.admin))["code"]

    # When it is exchanged naming another loopback port
    answer = requests.post(
        world.origin + "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": desktop["client_id"],
            "client_secret": desktop["client_secret"],
            "redirect_uri": "http://127.0.0.1:8081/",
            "code_verifier": flow.code_verifier,
        },
        timeout=10,
    )

    # Then Google's token endpoint refuses
    assert answer.status_code == 400
    assert answer.json()["error"] == "redirect_uri_mismatch"


def test_unknown_client_type_is_refused(world):
    answer = world.sandbox.post(
        "/_sandbox/clients", {"project": world.project, "type": "android"}, expect=400
    )
    assert "type" in answer["error"]
