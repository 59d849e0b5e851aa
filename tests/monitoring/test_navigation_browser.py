"""One navigation for the portal and the dashboard, the operator's distributor picker, short job
ids with a copy button, and pages that fit a phone: in a real browser (headless chromium driven by
Playwright) against the web app served over HTTP. Screenshots go to test-artifacts/layout/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.support.browser import csp_violations
from tests.support.dashboard import World, signed_in
from tests.support.live_dashboard import (
    DESKTOP,
    PHONE,
    header_links,
    new_page,
    page_width,
    served,
    shot,
    sign_in,
)


@pytest.fixture
def web(dashboard_app) -> Iterator[str]:
    with served(dashboard_app) as base:
        yield base


def pages_of(world: World) -> dict[str, str]:
    """The pages a newcomer opens first, by a name for their screenshots."""
    return {
        "overview": "/dashboard/",
        "jobs": "/dashboard/jobs",
        "job-detail": f"/dashboard/jobs/{world.a.failed_job}",
        "bulk-confirm": "/dashboard/jobs/bulk?action=retry&state=failed",
        "instance-health": "/dashboard/instances",
        "audit-log": "/dashboard/audit",
        "google-events": "/dashboard/events",
        "drift": "/dashboard/drift",
        "portal-instances": "/portal/instances",
        "portal-instance": f"/portal/instances/{world.a.instance_id}",
        "api-access": f"/portal/distributors/{world.a.distributor_id}/api-access",
        "mail": "/dashboard/mail",
        "notifications": f"/portal/distributors/{world.a.distributor_id}/notifications",
    }


def test_the_portal_and_the_dashboard_share_one_header(browser, web, world: World):
    # Given an operator signed in
    page = new_page(browser)
    refused = csp_violations(page.context)
    sign_in(page, web, world.users["operator"].email, then="/portal/instances")

    # When they look at the header on a portal page and on a dashboard page
    portal = header_links(page)
    assert page.get_attribute("#nav-instances", "aria-current") == "page"
    shot(page, "portal-instances")
    page.click("#nav-jobs")
    page.wait_for_selector("#jobs")
    dashboard = header_links(page)
    assert page.get_attribute("#nav-jobs", "aria-current") == "page"
    assert page.get_attribute("#nav-instances", "aria-current") is None

    # Then it is the same header, with the two instance pages named apart
    assert portal == dashboard
    labels = {i: label for i, label, _ in portal}
    assert labels["nav-instances"] == "Instances"
    assert labels["nav-health"] == "Instance health"
    paths = {i: path for i, _, path in portal}
    assert paths["nav-instances"] == "/portal/instances"
    assert paths["nav-health"] == "/dashboard/instances"
    assert [label for _, label, _ in portal] == [
        "Overview",
        "Jobs",
        "Instances",
        "Instance health",
        "Drift & events",
        "Mail",
        "API keys & webhook",
        "Notifications",
        "Audit log",
    ]
    # And each instance page says what the other one is for
    page.click("#nav-health")
    assert page.inner_text("h1") == "Instance health"
    page.click("#health-vs-setup a")
    page.wait_for_selector("#new-instance")
    assert page.url == web + "/portal/instances"

    # And a distributor's admin has the same header
    admin = new_page(browser)
    sign_in(admin, web, world.users["admin_a"].email, then="/dashboard/jobs")
    assert header_links(admin) == portal
    assert refused == []


def test_an_operator_sees_and_changes_whose_api_keys_they_manage(browser, web, world: World):
    # Given an operator on the API keys & webhook page, reached from the header
    page = new_page(browser)
    refused = csp_violations(page.context)
    sign_in(page, web, world.users["operator"].email)
    page.click("#nav-api-access")
    # (several distributors: the operator chooses one first)
    page.click(f"#distributors >> text={world.a.distributor_name}")
    page.wait_for_selector("#distributor-picker")

    # Then the page says whose it is, and the picker shows that distributor chosen
    assert world.a.distributor_name in page.inner_text("h1")
    assert page.input_value("#picker-distributor") == str(world.a.distributor_id)
    assert "distributors" in page.inner_text("#picker-note")
    assert page.get_attribute("#nav-api-access", "aria-current") == "page"
    shot(page, "api-access-picker")

    # When they choose another distributor in the picker
    with page.expect_navigation():
        page.select_option("#picker-distributor", str(world.b.distributor_id))

    # Then they are on that distributor's page, chosen in the picker
    assert page.url.endswith(f"/portal/distributors/{world.b.distributor_id}/api-access")
    assert world.b.distributor_name in page.inner_text("h1")
    assert page.input_value("#picker-distributor") == str(world.b.distributor_id)

    # And a distributor's admin, who has one distributor, gets no picker
    admin = new_page(browser)
    sign_in(admin, web, world.users["admin_a"].email)
    admin.click("#nav-api-access")
    admin.wait_for_selector("#api-keys")
    assert world.a.distributor_name in admin.inner_text("h1")
    assert admin.query_selector("#distributor-picker") is None
    assert refused == []


def test_the_picker_goes_only_to_per_distributor_pages(dashboard_app, world: World):
    operator = signed_in(dashboard_app, world.users["operator"])
    b = world.b.distributor_id
    resp = operator.get(f"/distributor?page=api_access.show&distributor_id={b}")
    assert resp.status_code == 302
    assert resp.location.endswith(f"/portal/distributors/{b}/api-access")
    assert operator.get("/distributor?page=auth.sign_out&distributor_id=1").status_code == 400
    assert operator.get("/distributor?page=api_access.show&distributor_id=x").status_code == 400


def test_job_ids_are_short_on_one_line_and_copied_whole(browser, web, world: World):
    # Given an operator on the jobs list
    page = new_page(browser)
    # (of this instance: other tests' jobs share the database and may fill the first page)
    then = f"/dashboard/jobs?instance={world.a.instance_id}&state=failed"
    sign_in(page, web, world.users["operator"].email, then=then)
    row = page.locator(f"tr[data-job-id='{world.a.failed_job}']")

    # Then the job's id shows its first 8 characters after job_, the whole id on hover
    shown = row.locator("code.short-id")
    assert shown.inner_text() == world.a.failed_job.removeprefix("job_")[:8]
    assert row.locator("a[title]").get_attribute("title") == world.a.failed_job
    # on one line
    line = page.evaluate("parseFloat(getComputedStyle(document.body).lineHeight) || 20")
    assert row.locator(".id-ref").bounding_box()["height"] < 2 * line

    # When they press its copy button (the list paused, so that no refresh redraws the row)
    page.check("#pause-refresh")
    row.locator("button.copy-id").click()
    # Then the button says so, and the whole id is on the clipboard
    expect(row.locator("button.copy-id")).to_have_text("Copied")  # once the clipboard said yes
    assert page.evaluate("navigator.clipboard.readText()") == world.a.failed_job


def test_every_page_fits_a_400_pixel_phone(browser, web, world: World):
    # Given an operator on a phone, and on a desktop
    phone = new_page(browser, width=PHONE, height=800)
    desktop = new_page(browser, width=DESKTOP)
    refused = csp_violations(phone.context)
    for page in (phone, desktop):
        page.goto(web + "/sign-in")
        shot(page, "sign-in")
    assert page_width(phone) <= PHONE
    for page in (phone, desktop):
        sign_in(page, web, world.users["operator"].email)
    for name, path in pages_of(world).items():
        for page in (phone, desktop):
            page.goto(web + path)
            page.wait_for_selector("#site-nav")
            shot(page, name)
        # Then no page scrolls sideways on the phone (a wide table scrolls inside itself)
        assert page_width(phone) <= PHONE, f"{name} is {page_width(phone)}px wide"
        # And every link of the header is on screen
        for link in phone.query_selector_all("#site-nav a"):
            box = link.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE, name
    assert refused == []
