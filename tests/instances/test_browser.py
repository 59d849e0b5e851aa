"""The portal in a real browser (headless Debian chromium driven by Playwright), against a real
web server and the sandbox's consent page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bss.db import session_scope
from bss.models import Instance, InstanceStatus
from tests.support.browser import csp_violations, keep_screenshot
from tests.support.portal import ARTIFACTS, PASSWORD, LivePortal, make_account


@pytest.fixture
def page(browser, request) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def shot(page, name: str) -> None:
    keep_screenshot(page, ARTIFACTS / f"{name}.png")


def sign_in(page, live: LivePortal, email: str) -> None:
    page.goto(live.url + "/")
    assert "/sign-in" in page.url
    shot(page, "01-sign-in")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_selector("#instances")


def create_instance(page, live: LivePortal, name: str, client_secret: str | None = None) -> int:
    page.click("#new-instance")
    page.fill("#name", name)
    page.fill("#client_id", live.google.client_id)
    page.fill("#client_secret", client_secret or live.google.client_secret)
    shot(page, "02-new-instance")
    page.click("#save-instance")
    page.wait_for_selector("#authenticate")
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def consent_in_popup(page, live: LivePortal, *, action: str = "#submit_approve_access"):
    with page.expect_popup() as opened:
        page.click("#authenticate")
    popup = opened.value
    popup.wait_for_selector("#consent_form")
    popup.select_option("select[name=account]", live.google.admin)
    shot(popup, "04-google-consent")
    with popup.expect_event("close", timeout=15000):
        popup.click(action)
    return popup


def status_in_db(live: LivePortal, instance_id: int) -> str:
    with session_scope(live.settings.database_url) as s:
        return s.get(Instance, instance_id).status


def test_sign_in_create_and_authenticate_an_instance(page, live_portal: LivePortal):
    refused = csp_violations(page.context)
    account = make_account(live_portal.settings.database_url)
    sign_in(page, live_portal, account.email)
    instance_id = create_instance(page, live_portal, "production")
    shot(page, "03-instance-page")
    assert page.inner_text("#instance-status") == "Not authenticated"
    # A marker that a reload or navigation would wipe out
    page.evaluate("window.__stayed = true")
    consent_in_popup(page, live_portal)
    # Then the instance page shows the instance authenticated, without a reload
    page.wait_for_function(
        "document.querySelector('#instance-status').dataset.status === 'authenticated'"
    )
    assert page.evaluate("window.__stayed") is True
    assert live_portal.google.admin in page.inner_text("#authenticated-as")
    assert "is authenticated as" in page.inner_text("#auth-message")
    assert page.inner_text("#authenticate") == "Re-authenticate"
    assert page.is_visible("#disconnect")
    shot(page, "05-instance-authenticated")
    assert status_in_db(live_portal, instance_id) == InstanceStatus.AUTHENTICATED
    # And Check passes everything
    page.click("#check")
    page.wait_for_selector("#check-results")
    assert "FAIL" not in page.inner_text("#check-results")
    shot(page, "06-check")
    # And Disable asks first: dismissed, it sends nothing
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.click("#disable")
    assert asked and asked[0].startswith("Disable:")
    assert page.url.endswith(f"/portal/instances/{instance_id}")
    # And the browser refused nothing under the Content-Security-Policy, pop-up included
    assert refused == []


def test_sign_in_with_google_then_authenticate(page, live_portal: LivePortal):
    make_account(live_portal.settings.database_url, email=live_portal.google.admin)
    page.goto(live_portal.url + "/")
    page.click("#sign-in-google")
    page.wait_for_selector("#consent_form")
    page.select_option("select[name=account]", live_portal.google.admin)
    shot(page, "07-google-sign-in-consent")
    page.click("#submit_approve_access")
    page.wait_for_selector("#instances")
    assert live_portal.google.admin in page.inner_text("#signed-in-as")
    shot(page, "08-signed-in-with-google")
    instance_id = create_instance(page, live_portal, "via-google")
    page.evaluate("window.__stayed = true")
    consent_in_popup(page, live_portal)
    page.wait_for_function(
        "document.querySelector('#instance-status').dataset.status === 'authenticated'"
    )
    assert page.evaluate("window.__stayed") is True
    assert status_in_db(live_portal, instance_id) == InstanceStatus.AUTHENTICATED


def test_cancel_in_the_popup_is_reported_on_the_instance_page(page, live_portal: LivePortal):
    sign_in(page, live_portal, make_account(live_portal.settings.database_url).email)
    instance_id = create_instance(page, live_portal, "cancelled")
    consent_in_popup(page, live_portal, action="#submit_deny_access")
    page.wait_for_selector("#auth-message.notice-error")
    assert "cancelled" in page.inner_text("#auth-message")
    assert page.inner_text("#instance-status") == "Not authenticated"
    shot(page, "09-cancelled")
    assert status_in_db(live_portal, instance_id) == InstanceStatus.NOT_AUTHENTICATED


def test_a_refused_redirect_uri_tells_what_to_register(page, live_portal: LivePortal):
    import requests

    google = live_portal.google
    requests.patch(
        f"{google.sandbox}/_sandbox/clients/{google.client_id}",
        json={"redirect_uris": ["https://elsewhere.example/cb"]},
        timeout=10,
    ).raise_for_status()
    sign_in(page, live_portal, make_account(live_portal.settings.database_url).email)
    create_instance(page, live_portal, "mismatch")
    with page.expect_popup() as opened:
        page.click("#authenticate")
    popup = opened.value
    popup.wait_for_url("**/o/oauth2/**")
    popup.wait_for_load_state()
    assert "redirect_uri_mismatch" in popup.content()
    shot(popup, "10-google-redirect-uri-mismatch")
    popup.close()  # what the user does on Google's error page
    page.wait_for_selector("#auth-message.notice-error")
    expected = (
        live_portal.url
        + "/Setup/SystemOptions/CloudAppsConfiguration.aspx/AuthenticateGoogleWorkspace"
    )
    assert expected in page.inner_text("#auth-message")
    shot(page, "11-redirect-uri-hint")


def test_blocked_popup_falls_back_to_a_full_page_redirect(page, live_portal: LivePortal):
    page.add_init_script("window.open = function () { return null; };")
    sign_in(page, live_portal, make_account(live_portal.settings.database_url).email)
    instance_id = create_instance(page, live_portal, "no-popups")
    page.click("#authenticate")
    page.wait_for_selector("#consent_form")
    page.select_option("select[name=account]", live_portal.google.admin)
    page.click("#submit_approve_access")
    page.wait_for_selector("#instance-status[data-status=authenticated]")
    assert page.url.endswith(f"/portal/instances/{instance_id}")
    assert "is authenticated as" in page.inner_text(".flash-ok")
    shot(page, "12-full-page-fallback")
