"""The API's docs page in a real browser, with every host but ours unreachable (offline)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.support.browser import csp_violations


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def test_the_swagger_page_shows_every_route_without_the_internet(stack, page):
    elsewhere = []

    def only_local(route):
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    refused = csp_violations(page.context)
    page.goto(f"{stack.web}/api/v1/swagger")
    page.wait_for_selector(".opblock-summary-path")
    paths = {p.inner_text().strip() for p in page.query_selector_all(".opblock-summary-path")}
    assert {
        "/api/v1/jobs",
        "/api/v1/jobs/{job_id}",
        "/api/v1/jobs/{job_id}/cancel",
        "/api/v1/jobs/{job_id}/timeline",
        "/api/v1/operations",
    } <= {p.replace("\u200b", "") for p in paths}
    assert page.query_selector(".models") is not None  # the schemas section rendered too
    # Nothing the page needs lives elsewhere (a validator badge may try, and is not needed)
    assert [u for u in elsewhere if "validator" not in u] == []
    # And it runs under the same Content-Security-Policy as every other page
    assert refused == []
