"""The job detail page: attempts numbered across an operator's retry, flags shown as they are
while secrets stay redacted, and a big order's page kept short. The job runs in the real runner
against a fake Google at the edge; the page is read in a real browser (headless chromium)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from bss.crypto import vault_from_settings
from bss.db import session_scope
from bss.errors import PermanentGoogleError
from bss.gateway import CallRecord
from bss.jobs import JobRunner
from bss.models import JobState, add_event, utcnow
from tests.support.browser import csp_violations
from tests.support.dashboard import World, add_job
from tests.support.dashboard_data import make_user
from tests.support.live_dashboard import (
    DESKTOP,
    PHONE,
    new_page,
    page_height,
    page_width,
    served,
    shot,
    sign_in,
)
from tests.support.samples import submit
from web.dashboard.common import REDACTED, redacted


class Google:
    """Google at the edge of the system: customers.get refused (400 invalid) while `refusing`,
    else the domain is free and the insert creates the customer."""

    def __init__(self, *, refusing: bool) -> None:
        self.refusing = refusing
        self.record: Any = None

    def __call__(self, *, settings: Any, credentials: Any, record: Any) -> Google:
        self.record = record
        return self

    def get_or_none(self, method: str, _request: Any) -> None:
        if self.refusing:
            self.record(CallRecord(method, 400, "invalid", 12, 1))
            raise PermanentGoogleError(
                "Google refused: invalid", status=400, reason="invalid", method=method
            )
        self.record(CallRecord(method, 404, "notFound", 9, 1))
        return None

    def call(self, method: str, _request: Any) -> dict[str, Any]:
        self.record(CallRecord(method, 200, None, 15, 1))
        return {"customerId": "C0" + uuid.uuid4().hex[:6]}


def run(settings, job_id: str, *, refusing: bool, worker: str) -> str | None:
    runner = JobRunner(
        settings=settings,
        vault=vault_from_settings(settings),
        resend=lambda *_: None,
        gateway_factory=Google(refusing=refusing),
    )
    return runner.run(job_id, worker=worker)


@pytest.fixture
def web(dashboard_app) -> Iterator[str]:
    with served(dashboard_app) as base:
        yield base


def test_attempts_are_numbered_across_an_operators_retry(browser, web, settings, tenant, sent):
    # Given a job whose first attempt Google refused
    job_id = submit(settings, tenant)
    assert run(settings, job_id, refusing=True, worker="host-1:101") == JobState.FAILED
    operator = make_user(settings.database_url, "operator")
    page = new_page(browser)
    refused = csp_violations(page.context)
    sign_in(page, web, operator.email, then=f"/dashboard/jobs/{job_id}")
    assert page.inner_text("#job-attempts") == "1"

    # When an operator retries it, and the second attempt succeeds
    page.click("#retry-job")
    page.wait_for_selector(".flash-ok")
    assert sent == [job_id]
    assert run(settings, job_id, refusing=False, worker="host-2:202") == JobState.SUCCEEDED
    page.reload()

    # Then the attempts are numbered 1 and 2, each with its worker and outcome
    attempts = page.locator("#attempts tr.attempt")
    assert [attempts.nth(i).get_attribute("data-attempt") for i in range(2)] == ["1", "2"]
    assert attempts.count() == 2
    assert "host-1:101" in attempts.nth(0).inner_text()
    assert "Failed" in attempts.nth(0).inner_text()
    assert "host-2:202" in attempts.nth(1).inner_text()
    assert "Succeeded" in attempts.nth(1).inner_text()
    # with the retry between them
    assert f"Retried by {operator.email}" in page.inner_text("#attempts tr.operator-action")
    # And the header counts what is listed (the job's own counter started again at the retry)
    assert page.inner_text("#job-attempts") == "2"
    assert "1 since the last retry" in page.inner_text("#attempts-since-retry")
    assert "Attempts (2)" in page.inner_text("#attempts h2")
    # And each Google call says which attempt made it
    page.click("#google-calls summary")
    calls = page.locator("#google-calls tr.google-call")
    assert [calls.nth(i).locator("td").nth(5).inner_text() for i in range(calls.count())] == [
        "1",
        "2",
        "2",
    ]
    # And the jobs list counts the same
    page.goto(f"{web}/dashboard/jobs?q={job_id}")
    assert page.locator(f"tr[data-job-id='{job_id}'] td.num").inner_text() == "2"
    assert refused == []
    for width in (DESKTOP, PHONE):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{web}/dashboard/jobs/{job_id}")
        shot(page, "job-detail-retried")
        assert page_width(page) <= width


def test_flags_under_secret_looking_keys_are_shown_and_secrets_are_not():
    shown = redacted(
        {
            "password_generated": True,
            "admin_password": {"generated": False, "password": "hunter2-hunter2"},
            "password": "hunter2-hunter2",
            "api_key": None,
            "client_secret": "",
            "token_count": 3,
            "users": [{"primaryEmail": "a@b.example", "password": "x"}],
        }
    )
    assert shown == {
        "password_generated": True,
        "admin_password": {"generated": False, "password": REDACTED},
        "password": REDACTED,
        "api_key": None,
        "client_secret": "",
        "token_count": REDACTED,
        "users": [{"primaryEmail": "a@b.example", "password": REDACTED}],
    }


def big_order(database_url: str, instance_id: int) -> str:
    """An order.create that ended with 20 subscriptions, as the pipeline leaves it: a checkpoint
    per step, and a timeline of some hundred lines."""
    subscriptions = [
        {"skuId": f"sku-{n}", "subscriptionId": f"S{n:04}", "seats": 10 + n, "created": True}
        for n in range(20)
    ]
    checkpoint = {
        "customer_check": {"customerId": None},
        "customer": {"customerId": "C0big", "created": True},
        "admin_password": {"generated": True},
        "admin_user_claim": {},
        "admin_user": {"primaryEmail": "root@big.example", "created": True},
        "admin_role": {"assigned": True},
        "subscriptions_claim": {},
        "subscriptions": {"subscriptions": subscriptions},
        "welcome_email_claim": {"requested": False},
        "welcome_email": {"sent": False},
    }
    job_id = add_job(
        database_url,
        instance_id,
        operation="order.create",
        state=JobState.SUCCEEDED,
        attempts=1,
        checkpoint=checkpoint,
        result={
            "customer_id": "C0big",
            "admin": "root@big.example",
            "password_generated": True,
            "subscriptions": [s["subscriptionId"] for s in subscriptions],
        },
        finished_at=utcnow() - timedelta(minutes=2),
    )
    with session_scope(database_url) as s:
        add_event(s, job_id, "state", "Attempt 1 started by host-1:7", state="running", attempt=1)
        for n in range(60):
            add_event(
                s,
                job_id,
                "google_call",
                "reseller.subscriptions.insert",
                method="reseller.subscriptions.insert",
                status=200,
                reason=None,
                duration_ms=40 + n,
                attempt=1,
            )
        for name, output in checkpoint.items():
            add_event(s, job_id, "step", f"Step {name} done", step=name, output=output)
        add_event(s, job_id, "state", "Succeeded", state="succeeded")
    return job_id


def test_a_big_order_shows_its_summary_first_and_folds_the_raw_records(
    browser, web, world: World, database_url
):
    # Given a big order that succeeded with a generated password
    job_id = big_order(database_url, world.a.instance_id)
    page = new_page(browser)
    sign_in(page, web, world.users["operator"].email, then=f"/dashboard/jobs/{job_id}")

    shot(page, "job-detail-big-order")
    # Then the page is short: state, result and steps first, the raw records folded
    order = page.evaluate(
        "['summary','result','steps','attempts','request','google-calls','timeline']"
        ".map(id => document.getElementById(id).getBoundingClientRect().top)"
    )
    assert order == sorted(order)
    for folded in ("#request", "#google-calls", "#timeline"):
        assert page.get_attribute(folded, "open") is None
    assert "Google calls (60)" in page.inner_text("#google-calls summary")
    assert page_height(page) < 2000, page_height(page)
    # And the result says a password was generated, without showing any password
    assert '"password_generated": true' in page.inner_text("#result")
    # And a step's checkpoint is summed up on one line, whole one click away
    gist = page.inner_text("tr[data-step='subscriptions'] summary")
    assert gist == "subscriptions: 20 items"

    # When the reader unfolds the timeline, it stays unfolded as the page refreshes itself
    page.click("#timeline summary")
    expect(page.locator("#refreshed-at")).not_to_have_text("now", timeout=15000)
    assert page.get_attribute("#timeline", "open") is not None
    assert page.locator("#timeline tr.event").count() == 72
    # And on a phone, folded again as a new visit finds it, nothing scrolls sideways
    page.set_viewport_size({"width": PHONE, "height": 900})
    page.reload()
    shot(page, "job-detail-big-order")
    assert page_width(page) <= PHONE
