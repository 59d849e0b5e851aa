"""The sandbox's OAuth error page in a real browser: a long redirect URI in the request details
wraps inside the card, at a desktop width and a phone's. Screenshots go to
test-artifacts/sandbox/."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.support.browser import keep_screenshot

from .helpers import ORDER

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "sandbox"
# As long as the redirect URI of a portal behind a long host name.
LONG_URI = (
    "https://provisioning.a-rather-long-distributor-name.example.com"
    "/Setup/SystemOptions/CloudAppsConfiguration.aspx/AuthenticateGoogleWorkspace"
)


@pytest.mark.parametrize("width", [1366, 400])
def test_a_long_redirect_uri_stays_inside_the_error_card(browser, world, width):
    # Given Google's consent URL for a redirect URI the client does not have
    query = urlencode(
        {
            "client_id": world.client["client_id"],
            "redirect_uri": LONG_URI,
            "response_type": "code",
            "scope": ORDER,
        }
    )
    context = browser.new_context(viewport={"width": width, "height": 800})
    try:
        page = context.new_page()
        # When the browser shows the error page
        page.goto(f"{world.origin}/o/oauth2/v2/auth?{query}")
        assert "redirect_uri_mismatch" in page.inner_text("#error_code")
        keep_screenshot(page, ARTIFACTS / f"01-redirect-uri-mismatch-{width}.png")
        # Then the URI wraps inside the card, and nothing scrolls sideways
        card = page.locator("main").bounding_box()
        details = page.locator("#error_details").bounding_box()
        assert card and details
        assert details["x"] + details["width"] <= card["x"] + card["width"]
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    finally:
        context.close()
