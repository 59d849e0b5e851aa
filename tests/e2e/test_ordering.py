"""Jobs on one customer run one at a time, in the order billing sent them, whatever fails."""

from __future__ import annotations

import time

import requests
from pipeline import STARTER, accept_tos, calls, new_domain, order_params, subscriptions

FINAL = {"succeeded", "failed", "cancelled"}


def _submit(tenant, operation, params):
    resp = tenant.submit(operation, params)
    assert resp.status_code == 202, resp.text
    return resp.json()["id"]


def _ordered_customer(tenant) -> str:
    domain = new_domain()
    assert tenant.wait(_submit(tenant, "order.create", order_params(domain)))["state"] == (
        "succeeded"
    )
    accept_tos(tenant.stack.sandbox, domain)
    return domain


def _seats(sandbox, domain) -> int:
    [sub] = [s for s in subscriptions(sandbox, domain) if s["skuId"] == STARTER]
    return sub["seats"]["maximumNumberOfSeats"]


def test_seat_changes_end_at_the_last_one_sent_though_a_third_of_them_fail_first(tenant):
    sandbox, domain = tenant.stack.sandbox, _ordered_customer(tenant)
    # Given Google answers 503 to about a third of seat changes
    requests.post(
        f"{sandbox}/_sandbox/faults",
        json={"method": "reseller.subscriptions.changeSeats", "probability": 0.3},
        timeout=10,
    ).raise_for_status()
    try:
        # When billing sends ten seat changes back to back
        sent = list(range(6, 16))
        ids = [
            _submit(tenant, "subscription.change_seats", {"customer": domain,
                    "sku_id": STARTER, "seats": n})
            for n in sent
        ]  # fmt: skip
        jobs = [tenant.wait(i, timeout=120) for i in ids]
    finally:
        requests.delete(f"{sandbox}/_sandbox/faults", timeout=10)
    # Then every one succeeded, each after the one before it, and Google ends at the last
    assert [j["state"] for j in jobs] == ["succeeded"] * len(ids), jobs
    finished = [j["finished_at"] for j in jobs]
    assert finished == sorted(finished)
    assert _seats(sandbox, domain) == sent[-1]
    assert [j["result"]["seats"] for j in jobs] == sent


def test_a_job_behind_another_says_which_and_runs_when_it_ends(tenant):
    sandbox, domain = tenant.stack.sandbox, _ordered_customer(tenant)
    other = _ordered_customer(tenant)
    latency = {"method": "reseller.subscriptions.changeSeats", "seconds": 6}
    requests.post(f"{sandbox}/_sandbox/latency", json=latency, timeout=10).raise_for_status()
    try:
        first = _submit(tenant, "subscription.change_seats",
                        {"customer": domain, "sku_id": STARTER, "seats": 7})  # fmt: skip
        second = _submit(tenant, "subscription.suspend", {"customer": domain, "sku_id": STARTER})
        # While the first runs, the second waits for it, and says so
        deadline = time.monotonic() + 30
        while (job := tenant.job(second))["state"] != "waiting":
            assert time.monotonic() < deadline and job["state"] in ("queued", "waiting"), job
            time.sleep(0.1)
        assert job["waiting_for"] == first and job["attempts"] == 0
        events = requests.get(
            f"{tenant.stack.web}/api/v1/jobs/{second}/timeline",
            headers={"Authorization": f"Bearer {tenant.api_key}"},
            timeout=10,
        ).json()["events"]
        assert any(e["message"].startswith(f"Waiting for job {first}") for e in events)
        # A job on another customer is not held up: it ends while the first still runs
        synced = tenant.wait(_submit(tenant, "customer.sync", {"customer": other}))
        assert synced["state"] == "succeeded"
        assert tenant.job(first)["state"] == "running"
    finally:
        latency["seconds"] = 0
        requests.post(f"{sandbox}/_sandbox/latency", json=latency, timeout=10)
    done = tenant.wait(second)
    assert done["state"] == "succeeded" and done["waiting_for"] is None and done["attempts"] == 1
    assert tenant.job(first)["finished_at"] <= done["started_at"]
    assert [c["method"] for c in calls(sandbox, "reseller.subscriptions.suspend")]


def test_a_failed_job_releases_the_customer_for_the_next(tenant):
    sandbox, domain = tenant.stack.sandbox, _ordered_customer(tenant)
    # An annual plan cannot lose seats: refused by rule, the job fails at once...
    refused = _submit(tenant, "subscription.change_seats",
                      {"customer": domain, "sku_id": "1010020028", "seats": 1})  # fmt: skip
    after = _submit(tenant, "subscription.change_seats",
                    {"customer": domain, "sku_id": STARTER, "seats": 9})  # fmt: skip
    assert tenant.wait(refused)["state"] == "failed"
    # ...and the next one on the customer runs
    assert tenant.wait(after)["state"] == "succeeded"
    assert _seats(sandbox, domain) == 9
