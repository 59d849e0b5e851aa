"""What a newcomer meets, in a real browser at a desktop width (1366 px) and a phone's (400 px):
the sign-in page, the New-instance form with the steps at Google beside it, its errors, the
instance page once a worker refreshed the token, the API's landing page and the audit log.
Screenshots go to test-artifacts/portal/ (20-... onwards), one per width."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from google.auth.transport.requests import Request

from bss.crypto import vault_from_settings
from bss.db import session_scope
from bss.gateway import TokenCache, instance_credentials
from bss.instances import OAUTH_CALLBACK_PATH, token_refresh_recorder
from bss.models import Instance
from tests.instances.test_token_health import authenticated_like_the_demo
from tests.support.browser import csp_violations, keep_screenshot
from tests.support.portal import ARTIFACTS, PASSWORD, LivePortal, make_account

WIDTHS = (1366, 400)


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": WIDTHS[0], "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def shots(page, name: str) -> None:
    """A full-page screenshot at each width; nothing may scroll sideways at either."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        keep_screenshot(page, ARTIFACTS / f"{name}-{width}.png")
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= width, f"{name} scrolls sideways at {width} px ({wide} px wide)"
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})


def test_what_a_newcomer_sees(page, live_portal: LivePortal):
    refused = csp_violations(page.context)
    live, google = live_portal, live_portal.google
    account = make_account(live.settings.database_url)
    # The sign-in page speaks to distributors and operators alike
    page.goto(live.url + "/sign-in")
    assert page.inner_text("h1") == "Sign in"
    shots(page, "20-sign-in")
    page.fill("#email", account.email)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_selector("#instances")

    # The New-instance form shows the redirect URI to register before the Client ID exists
    page.goto(live.url + "/portal/instances/new")
    assert page.inner_text(".redirect-uri") == live.url + OAUTH_CALLBACK_PATH
    form, setup = (
        page.locator("#instance-form").bounding_box(),
        page.locator("#setup").bounding_box(),
    )
    assert setup["x"] > form["x"] + form["width"] - 1  # beside the form on a wide screen
    shots(page, "21-new-instance-with-setup")
    page.set_viewport_size({"width": 400, "height": 900})
    form, setup = (
        page.locator("#instance-form").bounding_box(),
        page.locator("#setup").bounding_box(),
    )
    assert setup["y"] + setup["height"] <= form["y"]  # the steps first on a narrow one
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})

    # Bad fields are refused, each once, with a name to use instead
    page.fill("#name", "Bad Name/!")
    page.fill("#client_id", "abc")
    page.fill("#client_secret", "GOCSPX-whatever")
    page.click("#save-instance")
    page.wait_for_selector("#form-errors")
    errors = page.inner_text("#form-errors")
    assert "(use 'bad-name')" in errors and "Client ID: 'abc' does not look like" in errors
    shots(page, "22-new-instance-errors")

    # An instance whose token a worker refreshed shows that token on its page
    instance_id = authenticated_like_the_demo(live.settings, google, account.distributor_id)
    vault = vault_from_settings(live.settings)
    with session_scope(live.settings.database_url) as s:
        inst = s.get(Instance, instance_id)
    cache = TokenCache(
        redis.Redis.from_url(live.settings.redis_url),
        vault,
        on_refresh=token_refresh_recorder(live.settings.database_url),
    )
    creds = instance_credentials(inst, vault=vault, settings=live.settings)
    cache.wrap(creds, instance_id=instance_id, grant=f"browser-{instance_id}").refresh(Request())
    page.goto(f"{live.url}/portal/instances/{instance_id}")
    assert page.inner_text("#token-validity").startswith("valid until")
    shots(page, "23-instance-token-refreshed")

    # The audit log reads yes / no and comma-separated lists
    page.click("#edit-instance")
    page.fill("#client_secret", google.client_secret)
    page.click("#save-instance")
    page.wait_for_selector("#authenticate")
    page.goto(live.url + "/dashboard/audit")
    update = page.locator("tr.audit-entry[data-action='instance.update']").first.inner_text()
    assert "client_secret_replaced: yes" in update and "True" not in update
    shots(page, "24-audit-log")

    # The API's landing page: the docs, the document, and a first job
    page.goto(live.url + "/api/v1/")
    assert page.is_visible("#docs-swagger") and page.is_visible("#docs-openapi-json")
    assert "Idempotency-Key" in page.inner_text("#first-job-curl")
    shots(page, "25-api-landing")
    page.click("#docs-swagger")
    page.wait_for_selector(".opblock-summary-path")

    # And the browser refused nothing under the Content-Security-Policy
    assert refused == []
