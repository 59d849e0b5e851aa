"""The operator dashboard in a real browser (headless Debian chromium driven by Playwright)
against the whole stack: gunicorn, a real `dramatiq workers` process, the sandbox as Google.

It lives beside the other end-to-end tests because it shares their one `stack` (a second stack
would add a second worker to the same queue). Screenshots go to test-artifacts/dashboard/.
"""

from __future__ import annotations

import re
import uuid

import requests
from sqlmodel import select

from bss.db import session_scope
from bss.models import Instance, Job
from tests.e2e.conftest import Tenant
from tests.e2e.pipeline import fault
from tests.support.browser import csp_violations, keep_screenshot
from tests.support.dashboard_data import ARTIFACTS, make_user
from tests.support.portal import PASSWORD


def new_page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20000)
    return page


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    keep_screenshot(page, ARTIFACTS / f"{name}.png")


def sign_in(page, web: str, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(web + "/dashboard/")
    assert "/sign-in" in page.url
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_selector("#queues")


def customer(domain: str) -> dict:
    return {
        "domain": domain,
        "alternate_email": "it@billing.example.net",
        "postal_address": {
            "contact_name": "Ada Admin",
            "organization_name": "Acme",
            "postal_code": "94043",
            "country_code": "US",
        },
    }


def rows(page) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(job id, state) of each row of the jobs list, as shown now."""
    return [
        (r.get_attribute("data-job-id"), r.get_attribute("data-state"))
        for r in page.query_selector_all("#jobs tr.job")
    ]


def test_operators_find_failed_jobs_retry_them_in_bulk_and_see_them_succeed(
    browser, tenant: Tenant
):
    web, sandbox = tenant.stack.web, tenant.stack.sandbox
    database_url = tenant.stack.settings.database_url
    with session_scope(database_url) as s:
        instance = s.exec(select(Instance).where(Instance.client_id == tenant.client_id)).one()
        instance_id, distributor_id = instance.id, instance.distributor_id
    operator = make_user(database_url, "operator")
    admin = make_user(database_url, "distributor_admin", distributor_id)
    viewer = make_user(database_url, "viewer")

    # Given three orders that Google refused (a permanent 400 on customers.get), then cleared
    tag = uuid.uuid4().hex[:6]
    fault(sandbox, "reseller.customers.get", status=400, reason="invalid", times=3)
    failed = []
    for n in range(3):
        resp = tenant.submit(
            "customer.create", customer(f"shop{n}-{tag}.example"), external_ref=f"INV-{tag}-{n}"
        )
        assert resp.status_code == 202, resp.text
        failed.append(resp.json()["id"])
    for job_id in failed:
        assert tenant.wait(job_id)["state"] == "failed"
    requests.delete(f"{sandbox}/_sandbox/faults", timeout=10).raise_for_status()

    # When the operator signs in: the overview shows the queues and the live worker
    page = new_page(browser)
    refused = csp_violations(page.context)
    sign_in(page, web, operator.email)
    page.wait_for_selector("#workers tr.worker", timeout=45000)  # the page refreshes itself
    assert page.inner_text("#queue-jobs .dead") == "0"
    assert "failed" in page.inner_text("#chart-hour figcaption")
    shot(page, "01-overview")

    # When they filter the jobs to this instance's failed ones
    page.click("#nav-jobs")
    page.select_option("#f-instance", str(instance_id))
    page.select_option("#f-state", "failed")
    page.click("#apply-filters")
    page.wait_for_selector("#jobs tr.job")
    # Then exactly the three refused jobs are listed
    assert sorted(j for j, _ in rows(page)) == sorted(failed)
    shot(page, "02-jobs-failed")

    # When they open one: the error, its hint and the refused Google call are there
    page.click(f"a[href='/dashboard/jobs/{failed[0]}']")
    page.wait_for_selector("#error")
    assert page.inner_text("#job-state") == "failed"
    assert page.is_visible("#error-hint")
    page.click("#google-calls summary")  # the raw records are folded away
    calls = page.inner_text("#google-calls")
    assert "reseller.customers.get" in calls and "400" in calls and "invalid" in calls
    assert page.is_visible("#retry-job")
    shot(page, "03-job-detail")

    # When they go back and retry the filtered set: the confirmation says how many
    page.go_back()
    page.click("#bulk-retry")
    assert page.inner_text("#bulk-count") == "3"
    shot(page, "04-bulk-confirm")
    page.click("#confirm-bulk")
    page.wait_for_selector(".flash-ok")
    assert "Retried 3 jobs." in page.inner_text(".flash-ok")
    # (the filter is kept: the retried jobs have left the "failed" list)
    assert page.input_value("#f-state") == "failed"

    # Then, showing every state, the list refreshes itself until all three have succeeded
    page.select_option("#f-state", "")
    page.click("#apply-filters")
    page.wait_for_selector("#jobs tr.job")
    page.evaluate("window.__stayed = true")  # a reload would wipe this out
    page.wait_for_function(
        "ids => ids.every(id => document.querySelector(`tr[data-job-id='${id}']`)"
        "?.dataset.state === 'succeeded')",
        arg=failed,
        timeout=60000,
    )
    assert page.evaluate("window.__stayed") is True
    assert page.input_value("#f-instance") == str(instance_id)
    shot(page, "05-jobs-succeeded")
    for job_id in failed:
        assert tenant.job(job_id)["state"] == "succeeded"

    # And the audit log says who retried them, and from where
    page.click("#nav-audit")
    entry = page.locator("tr.audit-entry[data-action='job.bulk_retry']").first
    assert operator.email in entry.inner_text() and "count: 3" in entry.inner_text()
    shot(page, "06-audit-log")
    page.click("#nav-health")
    page.wait_for_selector(f"tr[data-instance-id='{instance_id}']")
    assert "Authenticated" in page.inner_text(f"tr[data-instance-id='{instance_id}']")
    shot(page, "07-instances")
    # (and the browser refused nothing on any page under the Content-Security-Policy)
    assert refused == []

    # And the distributor's admin sees their jobs, and no other distributor's
    admin_page = new_page(browser)
    sign_in(admin_page, web, admin.email)
    admin_page.goto(web + "/dashboard/jobs")
    listed = {j for j, _ in rows(admin_page)}
    assert set(failed) <= listed
    assert admin_page.query_selector("#f-distributor") is None
    with session_scope(database_url) as s:
        theirs = set(s.exec(select(Job.id).where(Job.distributor_id == distributor_id)).all())
    assert listed <= theirs
    shot(admin_page, "08-admin-jobs")

    # And a viewer sees the same jobs but no button that changes anything
    viewer_page = new_page(browser)
    sign_in(viewer_page, web, viewer.email)
    viewer_page.goto(f"{web}/dashboard/jobs/{failed[0]}")
    assert viewer_page.inner_text("#job-state") == "succeeded"
    assert viewer_page.query_selector("#retry-job") is None
    assert viewer_page.is_visible("#read-only")
    viewer_page.goto(web + "/dashboard/jobs")
    assert viewer_page.query_selector("#bulk-retry") is None
    assert re.search(r"\d+ shown", viewer_page.inner_text("#live"))
    shot(viewer_page, "09-viewer-jobs")
