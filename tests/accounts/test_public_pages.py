"""The pages anyone reaches first: the sign-in page (for distributors and operators alike), the
API's landing page with a first job that works, and the site's icon."""

from __future__ import annotations

import html
import json
import re

from bss.accounts import create_api_key
from bss.db import session_scope
from web import create_app


def test_sign_in_speaks_to_operators_too(anonymous):
    page = anonymous.get("/sign-in").text
    assert "<h1>Sign in</h1>" in page
    assert "distributor portal" not in page


def test_favicon_ico_answers_with_the_site_icon(anonymous):
    resp = anonymous.get("/favicon.ico")
    assert resp.status_code == 301 and resp.location.endswith("/static/favicon.svg")
    icon = anonymous.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert icon.data.startswith(b"<svg")
    icon.close()


def test_every_kind_of_page_links_the_icon(anonymous, portal):
    link = '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
    assert link in anonymous.get("/sign-in").text
    assert link in portal.get("/portal/instances").text
    assert link in anonymous.get("/api/v1/").text


def test_the_api_landing_page_links_the_docs_and_shows_a_first_job(anonymous):
    page = anonymous.get("/api/v1/").text
    for href in ("/api/v1/swagger", "/api/v1/openapi.json", "/portal/"):
        assert f'href="{href}' in page, href
    example = html.unescape(re.search(r'(?s)<pre id="first-job-curl">(.*?)</pre>', page).group(1))
    assert example.startswith("curl -sS -X POST http://localhost/api/v1/jobs")
    assert "-H 'Idempotency-Key: order-1001'" in example
    assert "Authorization: Bearer $API_KEY" in example


def test_the_first_job_of_the_landing_page_is_accepted_as_it_is_written(settings, tenant):
    # Given a distributor with an instance `main` and an API key
    with session_scope(settings.database_url) as s:
        key = create_api_key(s, distributor=tenant, label="first job")
    client = create_app(settings).test_client()
    # When the example is sent as written (its body, its Idempotency-Key)
    example = html.unescape(
        re.search(r'(?s)<pre id="first-job-curl">(.*?)</pre>', client.get("/api/v1/").text).group(1)
    )
    body = json.loads(re.search(r"(?s)-d '(.*)'$", example).group(1))
    idempotency_key = re.search(r"Idempotency-Key: ([^']+)'", example).group(1)
    resp = client.post(
        "/api/v1/jobs",
        json=body,
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": idempotency_key},
    )
    # Then the job is accepted
    assert resp.status_code == 202, resp.text
    assert resp.json["state"] == "queued" and resp.json["operation"] == "customer.create"
