"""Portal fixtures (a pytest plugin of the root conftest): a Google (sandbox) set up as a
distributor would, the web app in-process or as a real server in a thread, signed-in users."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from bss.accounts import create_distributor, create_user
from bss.db import session_scope
from bss.instances import OAUTH_CALLBACK_PATH
from bss.settings import Settings
from bss.tools import free_port
from tests.support.portal_pages import csrf_of
from web import create_app

PASSWORD = "correct horse battery staple"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "portal"


def sandbox_post(sandbox: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = requests.post(sandbox + path, json=body, timeout=10)
    assert resp.status_code < 300, resp.text
    return resp.json()


@dataclass
class Google:
    """A distributor's setup at (sandbox) Google: reseller domain, Cloud project, OAuth client."""

    sandbox: str
    reseller: str
    admin: str
    project: str
    client_id: str
    client_secret: str
    signin_client_id: str
    signin_client_secret: str


def set_up_google(sandbox: str, base: str, **project: Any) -> Google:
    tag = uuid.uuid4().hex[:8]
    reseller, admin = f"reseller-{tag}.example", f"admin@reseller-{tag}.example"
    sandbox_post(sandbox, "/_sandbox/resellers", {"domain": reseller, "admin_email": admin})
    project_id = sandbox_post(sandbox, "/_sandbox/projects", {"reseller": reseller, **project})[
        "project_id"
    ]
    web = sandbox_post(
        sandbox,
        "/_sandbox/clients",
        {
            "project": project_id,
            "name": "Provisioning",
            "redirect_uris": [base + OAUTH_CALLBACK_PATH],
        },
    )["web"]
    signin = sandbox_post(
        sandbox,
        "/_sandbox/clients",
        {
            "project": project_id,
            "name": "Portal sign-in",
            "redirect_uris": [base + "/sign-in/google/callback"],
        },
    )["web"]
    return Google(
        sandbox,
        reseller,
        admin,
        project_id,
        web["client_id"],
        web["client_secret"],
        signin["client_id"],
        signin["client_secret"],
    )


def portal_settings(
    tmp_path: Path, database_url: str, secret_keys: str, redis_url: str, google: Google, base: str
) -> Settings:
    return Settings(
        BSS_HOME=str(tmp_path),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        BSS_SECRET_KEYS=secret_keys,
        BSS_SESSION_SECRET="portal-tests-" + uuid.uuid4().hex,
        GOOGLE_SANDBOX_URL=google.sandbox,
        BSS_PUBLIC_BASE_URLS=base,
        GOOGLE_SIGNIN_CLIENT_ID=google.signin_client_id,
        GOOGLE_SIGNIN_CLIENT_SECRET=google.signin_client_secret,
        GOOGLE_HTTP_TIMEOUT="5",
        # Tests share one client address; the limit itself is tested with its own counter.
        BSS_SIGN_IN_RATE_LIMIT="1000 per minute",
    )


@dataclass
class Account:
    """A portal user and their distributor."""

    email: str
    password: str
    distributor_id: int | None
    distributor_slug: str | None
    user_id: int


def make_account(database_url: str, *, role: str = "distributor_admin", email: str | None = None):
    tag = uuid.uuid4().hex[:8]
    with session_scope(database_url) as s:
        d = None
        if role == "distributor_admin":
            d = create_distributor(s, name=f"Distributor {tag}")
        user = create_user(
            s,
            email=email or f"{role}-{tag}@portal.example",
            role=role,
            distributor=d,
            password=PASSWORD,
        )
        return Account(user.email, PASSWORD, d.id if d else None, d.slug if d else None, user.id)


class Portal:
    """The test client, driven like a browser: it reads CSRF tokens from the pages."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, **kw)

    def token(self) -> str:
        page = self.client.get("/portal/instances")
        if page.status_code != 200:
            page = self.client.get("/sign-in")
        return csrf_of(page.text)

    def post(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        body = dict(data or {})
        body.setdefault("csrf_token", self.token())
        return self.client.post(path, data=body, **kw)

    def sign_in(self, account: Account) -> Portal:
        resp = self.post("/sign-in", {"email": account.email, "password": account.password})
        assert resp.status_code == 302, resp.text
        return self

    def create_instance(self, name: str, client_id: str, client_secret: str, **extra: Any) -> int:
        resp = self.post(
            "/portal/instances/new",
            {"name": name, "mode": "oauth", "client_id": client_id, "client_secret": client_secret}
            | extra,
        )
        assert resp.status_code == 302, resp.text
        return int(resp.location.rstrip("/").rsplit("/", 1)[1])

    def start_authentication(self, instance_id: int, display: str = "popup") -> str:
        """Click Authenticate Instance; returns Google's authorization URL."""
        resp = self.post(f"/portal/instances/{instance_id}/authenticate", {"display": display})
        assert resp.status_code == 302, resp.text
        return str(resp.location)


@pytest.fixture
def google(sandbox: str) -> Google:
    return set_up_google(sandbox, "http://localhost")


@pytest.fixture
def settings_for_portal(
    tmp_path: Path, database_url: str, secret_keys: str, redis_url: str, google: Google
) -> Settings:
    return portal_settings(
        tmp_path, database_url, secret_keys, redis_url, google, "http://localhost"
    )


@pytest.fixture
def app(settings_for_portal: Settings) -> Any:
    return create_app(settings_for_portal)


@pytest.fixture
def account(database_url: str) -> Account:
    return make_account(database_url)


@pytest.fixture
def portal(app: Any, account: Account) -> Portal:
    """A distributor admin signed in to the portal."""
    return Portal(app.test_client()).sign_in(account)


@pytest.fixture
def anonymous(app: Any) -> Portal:
    return Portal(app.test_client())


@dataclass
class LivePortal:
    url: str
    google: Google
    settings: Settings


@pytest.fixture
def live_portal(
    tmp_path: Path, database_url: str, secret_keys: str, redis_url: str, sandbox: str
) -> Iterator[LivePortal]:
    """The web app as a real HTTP server (werkzeug, threaded) against the sandbox."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    google = set_up_google(sandbox, base)
    settings = portal_settings(tmp_path, database_url, secret_keys, redis_url, google, base)
    server = make_server("127.0.0.1", port, create_app(settings), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LivePortal(base, google, settings)
    finally:
        server.shutdown()
        thread.join(timeout=10)


def authenticated_instance(portal: Portal, google: Google, name: str = "main") -> int:
    """An instance authenticated through the consent flow, as the admin would."""
    from tests.support.portal_pages import google_consent, path_and_query

    instance_id = portal.create_instance(name, google.client_id, google.client_secret)
    callback = google_consent(portal.start_authentication(instance_id), account=google.admin)
    resp = portal.get(path_and_query(callback))
    assert resp.status_code == 200 and '"ok": true' in resp.text, resp.text
    return instance_id
