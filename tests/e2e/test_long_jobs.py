"""A license job for many users at a low License Manager quota: it runs in chunks paced by the
quota, gives its thread back between time slices, shows its progress to billing and operators,
and survives its worker being killed between chunks without assigning anything twice."""

from __future__ import annotations

import os
import signal
import time

import requests

from bss.broker import make_broker, send_job
from bss.jobs import sweep
from tests.e2e.pipeline import STARTER, calls, licenses, new_domain, order_params, sandbox_post
from tests.e2e.test_dashboard import new_page, sign_in
from tests.e2e.test_worker_killed import start_worker, submit_directly, worker_env
from tests.support.browser import keep_screenshot
from tests.support.dashboard_data import ARTIFACTS, make_user

USERS = 60
INSERT = "licensing.licenseAssignments.insert"


def test_a_license_job_for_many_users_is_chunked_survives_a_kill_and_shows_progress(
    tenant, supervisor, browser, own_broker
):
    stack, sandbox = tenant.stack, tenant.stack.sandbox
    # Given a customer with 60 users, and a License Manager quota of 10 calls/s
    domain = new_domain()
    order = order_params(
        domain, subscriptions=[{"sku_id": STARTER, "plan": "FLEXIBLE", "seats": USERS + 5}]
    )
    assert tenant.wait(tenant.submit("order.create", order).json()["id"])["state"] == "succeeded"
    sandbox_post(sandbox, f"/_sandbox/customers/{domain}/accept-tos", {})
    people = [f"user{n:03}@{domain}" for n in range(USERS)]
    for email in people:
        sandbox_post(sandbox, f"/_sandbox/customers/{domain}/users", {"email": email})
    # And workers of this test's own that pace licensing at 10 calls/s and give their thread
    # back after every second of work
    env = worker_env(
        stack,
        own_broker.redis_url,
        BSS_BROKER_URL=own_broker.broker_url,
        BSS_QUOTA_LICENSING="10",
        BSS_JOB_SLICE_SECONDS="1",
        BSS_JOB_LEASE_SECONDS="4",
        BSS_JOB_RETRY_BASE_SECONDS="0.2",
    )
    settings = stack.settings.model_copy(update={**own_broker.update, "resend_after_seconds": 1})
    broker = make_broker(settings)
    worker = start_worker(supervisor, env)
    params = {"customer": domain, "sku_id": STARTER, "users": people}
    job_id = submit_directly(tenant, "license.assign", params, broker)

    # When billing polls, it sees the job's progress grow
    seen: list[int] = []
    deadline = time.monotonic() + 60
    while not seen or seen[-1] < 20:
        assert time.monotonic() < deadline, tenant.job(job_id)
        progress = tenant.job(job_id).get("progress")
        if progress:
            assert progress["total"] == USERS and progress["unit"] == "users"
            seen.append(progress["done"])
        time.sleep(0.2)
    assert seen == sorted(seen)
    # ...and its pauses between slices spent no attempt
    assert tenant.job(job_id)["attempts"] == 1

    # And its worker is killed between chunks
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(10)
    done_at_kill = tenant.job(job_id)["progress"]["done"]
    assert done_at_kill < USERS, "the job finished before the kill: make it longer"
    # And operators see its progress on the job's page
    operator = make_user(stack.settings.database_url, "operator")
    page = new_page(browser)
    sign_in(page, stack.web, operator.email)
    page.goto(f"{stack.web}/dashboard/jobs/{job_id}")
    shown = page.inner_text("#progress")
    assert f"/{USERS} users" in shown, shown
    assert page.locator("tr.attempt").count() == 1
    keep_screenshot(page, ARTIFACTS / "long-job-progress.png")

    # When a worker starts again
    start_worker(supervisor, env)
    deadline = time.monotonic() + 90
    while tenant.job(job_id)["state"] != "succeeded":
        assert time.monotonic() < deadline, tenant.job(job_id)
        sweep(settings, lambda j: send_job(broker, j))
        time.sleep(0.5)

    # Then every user holds one license, each assigned by one successful call
    job = tenant.job(job_id)
    assert licenses(sandbox, STARTER) >= set(people)
    assert sorted(job["result"]["assigned"]) == people
    assert job["progress"] == {"done": USERS, "total": USERS, "unit": "users"}
    applied = [c for c in calls(sandbox, INSERT) if c.get("status") == 200]
    assert len(applied) == USERS
    # And it gave its thread back between slices, and the kill cost it one attempt at most
    resp = requests.get(
        f"{stack.web}/api/v1/jobs/{job_id}/timeline",
        headers={"Authorization": f"Bearer {tenant.api_key}"},
        timeout=10,
    )
    paused = [e for e in resp.json()["events"] if e["message"].startswith("Paused at")]
    assert paused, "the job never gave its thread back"
    assert job["attempts"] <= 2
