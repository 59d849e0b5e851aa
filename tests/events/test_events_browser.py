"""Google events and Drift in a real browser (headless chromium, Playwright) against the web app
served over HTTP: an operator reads Google's payload, accepts a difference, and the pages fit a
phone. Screenshots go to test-artifacts/events/ (BSS_SCREENSHOTS: another directory)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bss.db import session_scope
from bss.models import Drift, GoogleEvent, Instance, utcnow
from tests.support.browser import csp_violations, keep_screenshot
from tests.support.google_events import drifted_customer
from tests.support.live_dashboard import PHONE, new_page, page_width, served, sign_in

ARTIFACTS = (
    Path(
        os.environ.get("BSS_SCREENSHOTS") or Path(__file__).resolve().parents[2] / "test-artifacts"
    )
    / "events"
)


def shot(page, name: str) -> None:
    keep_screenshot(page, ARTIFACTS / f"{name}-{page.viewport_size['width']}.png")


@pytest.fixture
def web(dashboard_app) -> Iterator[str]:
    with served(dashboard_app) as base:
        yield base


def _notified(database_url: str, instance_id: int, domain: str) -> None:
    with session_scope(database_url) as s:
        instance = s.get(Instance, instance_id)
        instance.events_mode, instance.events_registered_at = "push", utcnow()
        instance.events_subscription = "projects/bss-platform/subscriptions/bss-a-main"
        instance.last_event_at = utcnow()
        s.add(instance)
        s.add(
            GoogleEvent(
                message_id=f"1{uuid.uuid4().int % 10**15}",
                subscription=instance.events_subscription,
                instance_id=instance_id,
                distributor_id=instance.distributor_id,
                event_type="LICENSE_CAP_CHANGED",
                event_time=utcnow(),
                publish_time=utcnow(),
                customer_id="C0abc123",
                customer_domain=domain,
                subscription_id="sub-C0abc123",
                sku_id="1010020027",
                payload={
                    "eventType": "LICENSE_CAP_CHANGED",
                    "eventTime": "2026-11-28T09:30:05Z",
                    "customerId": "C0abc123",
                    "customerDomain": domain,
                    "subscriptionId": "sub-C0abc123",
                    "skuId": "1010020027",
                },
                attributes={"eventType": "LICENSE_CAP_CHANGED"},
                state="processed",
                processed_at=utcnow(),
            )
        )


def test_an_operator_reads_an_event_and_accepts_the_drift_it_made(
    browser, web, world, database_url
):
    drifted = drifted_customer(database_url, world.a.instance_id, ordered=5, at_google=9)
    _notified(database_url, world.a.instance_id, drifted.domain)
    page = new_page(browser)
    refused = csp_violations(page.context)
    sign_in(page, web, world.users["operator"].email, then="/dashboard/")

    # When the operator opens Google events from the header's "Drift & events" and unfolds the
    # payload
    page.click("#nav-drift")
    page.click("#tab-events")
    page.wait_for_selector("#instance-notifications")
    row = page.locator(f'#instance-notifications tr[data-instance-id="{world.b.instance_id}"]')
    assert row.get_attribute("data-state") == "off"
    page.click(f"#events-{world.a.instance_id} summary")
    assert '"customerDomain": "' + drifted.domain in page.inner_text(
        f"#events-{world.a.instance_id} pre"
    )
    shot(page, "google-events")

    # And goes to Drift, where both values stand side by side
    page.click("#tab-drift")
    row = page.locator(f"#drift-{drifted.drift_id}")
    assert row.locator(".ours strong").inner_text() == "5"
    assert row.locator(".google strong").inner_text() == "9"
    shot(page, "drift")

    # When they press Accept and confirm
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"#accept-{drifted.drift_id}")
    page.wait_for_selector(".flash-ok")

    # Then the difference is gone from the open ones, and resolved in the database
    assert page.locator(f"#drift-{drifted.drift_id}").count() == 0
    with session_scope(database_url) as s:
        assert s.get(Drift, drifted.drift_id).resolution == "accepted"
    shot(page, "drift-accepted")

    # And both pages fit a phone
    phone = new_page(browser, width=PHONE)
    sign_in(phone, web, world.users["operator"].email, then="/dashboard/events")
    assert page_width(phone) <= PHONE
    shot(phone, "google-events")
    phone.goto(web + "/dashboard/drift?state=resolved")
    assert page_width(phone) <= PHONE
    shot(phone, "drift-resolved")
    assert refused == []


def test_the_instance_page_shows_its_notifications(browser, web, world, database_url):
    with session_scope(database_url) as s:
        instance = s.get(Instance, world.a.instance_id)
        instance.events_mode, instance.events_registered_at = "pull", utcnow()
        instance.events_topic = "projects/partner-watch/topics/C0reseller"
        instance.events_subscription = "projects/bss-platform/subscriptions/bss-a-main"
        instance.last_reconciled_at = utcnow()
        instance.last_reconcile = {"calls": 2, "customers": 12, "subscriptions": 14, "missed": 1}
        s.add(instance)
    page = new_page(browser)
    sign_in(
        page, web, world.users["operator"].email, then=f"/portal/instances/{world.a.instance_id}"
    )
    assert page.get_attribute("#notifications-state", "data-state") == "silent"
    assert page.is_checked("#events-mode-pull")
    page.locator("#notifications").scroll_into_view_if_needed()
    shot(page, "instance-notifications")
