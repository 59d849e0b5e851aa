"""Security headers on every kind of answer (portal, dashboard, API, error, API docs), no-store
where a secret is shown once, 405 with Allow, and pages with no inline script or style."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bss.instances import OAUTH_CALLBACK_PATH
from tests.support.dashboard_data import add_job
from tests.support.portal import Portal, make_account

TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
KEY = re.compile(r'id="new-key-value">(bss_[A-Za-z0-9_-]+)<')


def assert_secured(resp) -> None:
    assert resp.headers["Content-Security-Policy"] == CSP
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    # Over plain HTTP a browser ignores HSTS, and a developer's localhost must not get it
    assert "Strict-Transport-Security" not in resp.headers


class _Inline(HTMLParser):
    """What a page runs or styles inline: the CSP would block it."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        runs = a.get("type") != "application/json"  # a data block is never run
        if tag == "script" and runs and not (a.get("src") or a.get("nonce")):
            self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style>")
        self.found += [f"{tag} {name}=" for name in a if name.startswith("on") or name == "style"]
        self.found += [f"{tag} {k}=javascript:" for k, v in a.items() if "javascript:" in (v or "")]


def inline_in(html: str) -> list[str]:
    parser = _Inline()
    parser.feed(html)
    return parser.found


@pytest.fixture
def operator_portal(app, database_url: str) -> Portal:
    return Portal(app.test_client()).sign_in(make_account(database_url, role="operator"))


def test_portal_dashboard_api_error_and_docs_answers_carry_the_headers(
    app, portal, operator_portal, account
):
    # A portal page and a dashboard page
    assert_secured(portal.get("/portal/instances"))
    assert_secured(operator_portal.get("/dashboard/"))
    # An API answer, with a key the admin created on the portal
    created = portal.post(f"/portal/distributors/{account.distributor_id}/api-keys", {"label": "x"})
    key = KEY.search(created.text).group(1)
    answer = app.test_client().get("/api/v1/jobs", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200 and answer.is_json
    assert_secured(answer)
    # Error pages, as a page and as JSON
    missing = portal.get("/no-such-page")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert_secured(missing)
    assert_secured(app.test_client().get("/api/v1/jobs"))  # 401, JSON
    # The API docs, which load Swagger UI from our own files only
    docs = app.test_client().get("/api/v1/swagger")
    assert docs.status_code == 200
    assert_secured(docs)
    assert "swagger-ui-bundle.js" in docs.text and "://" not in docs.text


def test_hsts_is_sent_over_https_only(app):
    client = app.test_client()
    assert "Strict-Transport-Security" not in client.get("/sign-in").headers
    hsts = client.get("/sign-in", base_url="https://localhost").headers["Strict-Transport-Security"]
    assert hsts.startswith("max-age=")


def test_pages_that_show_a_secret_once_are_not_stored(app, portal, account):
    base = f"/portal/distributors/{account.distributor_id}"
    key_page = portal.post(f"{base}/api-keys", {"label": "billing"})
    assert KEY.search(key_page.text)
    assert key_page.headers["Cache-Control"] == "no-store"
    secret_page = portal.post(f"{base}/webhook", {"url": "https://billing.example.com/hook"})
    assert 'id="new-secret-value"' in secret_page.text
    assert secret_page.headers["Cache-Control"] == "no-store"
    # And every other dynamic answer too; static files may be cached (revalidated)
    assert portal.get(f"{base}/api-access").headers["Cache-Control"] == "no-store"
    with app.test_client().get("/static/portal.js") as static:
        assert static.headers["Cache-Control"] != "no-store"


@pytest.mark.parametrize("path", ["/", "/portal/instances", "/api/v1/jobs", "/api/v1/swagger"])
def test_trace_and_other_unsupported_methods_answer_405_with_allow(app, path):
    client = app.test_client()
    for method in ("TRACE", "PUT", "DELETE"):
        resp = client.open(path, method=method)
        assert resp.status_code == 405, (method, path)
        allowed = {m.strip() for m in resp.headers["Allow"].split(",")}
        assert "GET" in allowed and method not in allowed
        assert_secured(resp)
    assert client.open("/api/v1/jobs", method="TRACE").is_json


def test_rendered_pages_have_no_inline_script_or_style(
    app, portal, operator_portal, account, database_url, google
):
    # Given an instance, an API key and a webhook secret shown, and jobs on the dashboard
    instance_id = portal.create_instance("main", google.client_id, google.client_secret)
    queued = add_job(database_url, instance_id)
    base = f"/portal/distributors/{account.distributor_id}"
    anonymous = app.test_client()
    pages = {
        "sign-in": anonymous.get("/sign-in"),
        "404": anonymous.get("/no-such-page"),
        "docs": anonymous.get("/api/v1/swagger"),
        "docs index": anonymous.get("/api/v1/"),
        "oauth result": anonymous.get(OAUTH_CALLBACK_PATH + "?error=access_denied&state=nope"),
        "instances": portal.get("/portal/instances"),
        "instance": portal.get(f"/portal/instances/{instance_id}"),
        "new instance": portal.get("/portal/instances/new"),
        "api key shown": portal.post(f"{base}/api-keys", {"label": "billing"}),
        "api access": portal.get(f"{base}/api-access"),
        "overview": operator_portal.get("/dashboard/"),
        "overview live": operator_portal.get("/dashboard/live"),
        "jobs": operator_portal.get("/dashboard/jobs"),
        "job": operator_portal.get(f"/dashboard/jobs/{queued}"),
        "dashboard instances": operator_portal.get("/dashboard/instances"),
        "audit": operator_portal.get("/dashboard/audit"),
    }
    for name, resp in pages.items():
        assert resp.status_code in (200, 400, 404), (name, resp.status_code)
        assert "<html" in resp.text or name.endswith("live"), name
        assert inline_in(resp.text) == [], name
    # The pop-up's result still reaches its script, as a JSON data block
    assert '<script type="application/json" id="auth-result">' in pages["oauth result"].text
    # The job can be cancelled: its confirmation is a data- attribute, not an onsubmit
    assert 'data-confirm="Cancel this job?"' in pages["job"].text


@pytest.mark.parametrize("template", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: p.name)
def test_no_template_has_inline_script_or_style(template: Path):
    assert inline_in(template.read_text()) == []
