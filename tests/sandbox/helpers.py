"""Test helpers: a client for the control API, a seeded world, and the Google libraries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import googleapiclient
import requests
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

AUTH = "https://www.googleapis.com/auth/"
ORDER = AUTH + "apps.order"
USER = AUTH + "admin.directory.user"
LICENSING = AUTH + "apps.licensing"
GMAIL_SEND = AUTH + "gmail.send"
ALL_SCOPES = [ORDER, USER, LICENSING, GMAIL_SEND]
APIS = [
    "reseller.googleapis.com",
    "admin.googleapis.com",
    "licensing.googleapis.com",
    "gmail.googleapis.com",
]
REDIRECT_URI = "http://localhost:8080/oauth/callback"
DISCOVERY = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"


class Sandbox:
    """The control API of a running sandbox."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()

    def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        response = self.http.request(method, self.url + path, json=body, timeout=30)
        assert response.status_code == expect, response.text
        return response.json()

    def post(self, path: str, body: Any = None, expect: int = 200) -> Any:
        return self.call("POST", path, body, expect)

    def reset(self) -> None:
        assert self.post("/_sandbox/reset") == {"ok": True}

    def state(self) -> dict:
        return self.call("GET", "/_sandbox/state")

    def calls(self, method: str | None = None) -> list[dict]:
        query = f"?method={method}" if method else ""
        return self.call("GET", "/_sandbox/calls" + query)["calls"]

    def tokens(self, client_id: str, user: str, scopes: list[str]) -> dict:
        return self.post(
            "/_sandbox/tokens", {"client_id": client_id, "user": user, "scopes": scopes}
        )


@dataclass
class World:
    """A reseller, its admin, a project with every API enabled, and a web OAuth client."""

    sandbox: Sandbox
    reseller: str
    admin: str
    project: str
    client: dict

    @classmethod
    def seed(cls, sandbox: Sandbox, *, domain: str = "reseller.example", **project: Any) -> World:
        admin = f"admin@{domain}"
        sandbox.post("/_sandbox/resellers", {"domain": domain, "admin_email": admin})
        project_id = sandbox.post("/_sandbox/projects", {"reseller": domain, **project})[
            "project_id"
        ]
        client = sandbox.post(
            "/_sandbox/clients",
            {"project": project_id, "name": "Provisioner", "redirect_uris": [REDIRECT_URI]},
        )["web"]
        return cls(sandbox, domain, admin, project_id, client)

    @property
    def origin(self) -> str:
        return self.sandbox.url

    def credentials(
        self, scopes: list[str] | None = None, user: str | None = None, client: dict | None = None
    ) -> Credentials:
        """User credentials holding only a refresh token, as our product stores them."""
        client = client or self.client
        minted = self.sandbox.tokens(client["client_id"], user or self.admin, scopes or ALL_SCOPES)
        return Credentials(
            token=None,
            refresh_token=minted["refresh_token"],
            client_id=client["client_id"],
            client_secret=client["client_secret"],
            token_uri=self.origin + "/token",
        )

    def service(self, api: str, version: str, credentials: Any = None, **kwargs: Any) -> Any:
        """A google-api-python-client service pointed at the sandbox."""
        return build(
            api,
            version,
            credentials=credentials or self.credentials(),
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": self.origin + "/"},
            **kwargs,
        )


def error_of(excinfo: Any) -> tuple[int, str, dict]:
    """(status, first reason, body) of an HttpError."""
    error: HttpError = excinfo.value
    body = json.loads(error.content)
    return error.resp.status, body["error"]["errors"][0]["reason"], body


def customer_body(domain: str, **overrides: Any) -> dict:
    body = {
        "customerDomain": domain,
        "alternateEmail": "owner@elsewhere.example",
        "phoneNumber": "+1 650-253-0000",
        "postalAddress": {
            "contactName": "Ada Owner",
            "organizationName": "Customer Inc",
            "postalCode": "94043",
            "countryCode": "US",
            "addressLine1": "1 Main St",
            "locality": "Mountain View",
            "region": "CA",
        },
    }
    body.update(overrides)
    return body


class _FormParser(HTMLParser):
    """Reads the consent form the way a browser would submit it."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: list[tuple[str, str]] = []
        self.checkboxes: list[str] = []
        self.accounts: list[str] = []
        self.selected_account = ""
        self._in_select = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a.get("action", "")
        elif tag == "input" and a.get("type") == "hidden":
            self.fields.append((a["name"], a.get("value", "")))
        elif tag == "input" and a.get("type") == "checkbox" and "checked" in a:
            self.checkboxes.append(a["value"])
        elif tag == "select" and a.get("name") == "account":
            self._in_select = True
        elif tag == "option" and self._in_select:
            self.accounts.append(a["value"])
            if "selected" in a:
                self.selected_account = a["value"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._in_select = False


def consent_page(url: str, session: requests.Session | None = None) -> tuple[Any, Any]:
    """GET the authorization URL like a browser: (response, parsed consent form)."""
    http = session or requests.Session()
    response = http.get(url, allow_redirects=False, timeout=10)
    parser = _FormParser()
    parser.feed(response.text)
    return response, parser


def consent(
    origin: str,
    url: str,
    *,
    action: str = "allow",
    untick: tuple[str, ...] = (),
    account: str | None = None,
    session: requests.Session | None = None,
) -> str:
    """Open the consent page, submit it like a browser, and return the redirect Location.

    When Google skips the page (consent given before), the Location comes straight back.
    """
    http = session or requests.Session()
    page, form = consent_page(url, http)
    if page.status_code == 302:
        return page.headers["Location"]
    assert page.status_code == 200, page.text
    fields = list(form.fields)
    fields += [("scope", s) for s in form.checkboxes if s not in untick]
    fields += [("account", account or form.selected_account), ("action", action)]
    response = http.post(origin + form.action, data=fields, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}
