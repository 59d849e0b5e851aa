"""Nothing is done twice at Google and no job is lost, whatever fails in between."""

from __future__ import annotations

import time

import pytest
import requests
from pipeline import (
    STARTER,
    accept_tos,
    calls,
    customer_params,
    customers,
    fault,
    licenses,
    lose_queued_messages,
    new_domain,
    order_params,
    sandbox_post,
    subscriptions,
    users,
)
from sqlmodel import col, select

from bss.broker import make_broker, send_job
from bss.crypto import Vault
from bss.db import session_scope
from bss.gateway import REQUIRED_SCOPES
from bss.instances import set_enabled, store_oauth_grant
from bss.jobs import resume_waiting_jobs, sweep
from bss.models import Distributor, Instance, JobEvent

FINAL = {"succeeded", "failed", "cancelled"}


def submit(tenant, operation, params, **kw):
    resp = tenant.submit(operation, params, **kw)
    assert resp.status_code == 202, resp.text
    return resp.json()["id"]


def wait_all(tenant, ids, timeout=60, states=FINAL, between=None):
    deadline = time.monotonic() + timeout
    while True:
        jobs = [tenant.job(i) for i in ids]
        if all(j["state"] in states for j in jobs) or time.monotonic() > deadline:
            return jobs
        if between:
            between()
        time.sleep(0.3)


def events(settings, job_id, kind=None):
    with session_scope(settings.database_url) as s:
        rows = s.exec(
            select(JobEvent).where(JobEvent.job_id == job_id).order_by(col(JobEvent.id))
        ).all()
        return [(e.kind, e.message, e.data) for e in rows if kind in (None, e.kind)]


@pytest.mark.parametrize(
    "method",
    [
        "reseller.customers.insert",
        "directory.users.insert",
        "directory.users.makeAdmin",
        "reseller.subscriptions.insert",
    ],
)
def test_a_change_applied_but_answered_into_the_void_is_not_made_twice(tenant, method):
    sandbox, domain = tenant.stack.sandbox, new_domain()
    # Given Google will apply the next call and drop its response
    fault(sandbox, method, kind="applied_response_lost")
    # When billing orders
    job = tenant.wait(submit(tenant, "order.create", order_params(domain)))
    # Then the order succeeds, and Google holds exactly one of everything
    assert job["state"] == "succeeded", job
    assert len(customers(sandbox, domain)) == 1
    assert [u["isAdmin"] for u in users(sandbox, domain)] == [True]
    assert [s["skuId"] for s in subscriptions(sandbox, domain)] == [STARTER]
    # And the lost answer was not simply retried blind: the call went out once
    if method.endswith(".insert"):
        assert len(calls(sandbox, method)) == 1
    # And the result says this job created what it created, although the answer was lost
    result = job["result"]
    assert result["customer_created"] is True and result["admin_created"] is True
    assert [s["created"] for s in result["subscriptions"]] == [True]


@pytest.mark.parametrize(
    ("operation", "method"),
    [
        ("customer.create", "reseller.customers.insert"),
        ("subscription.create", "reseller.subscriptions.insert"),
    ],
)
def test_a_single_create_whose_answer_is_lost_reports_created(tenant, operation, method):
    sandbox, domain = tenant.stack.sandbox, new_domain()
    if operation == "subscription.create":
        assert tenant.wait(submit(tenant, "customer.create", customer_params(domain)))["result"][
            "created"
        ]
    fault(sandbox, method, kind="applied_response_lost")
    params = (
        customer_params(domain)
        if operation == "customer.create"
        else {"customer": domain, "sku_id": STARTER, "plan": "FLEXIBLE", "seats": 3}
    )
    job = tenant.wait(submit(tenant, operation, params))
    assert job["state"] == "succeeded", job
    assert job["result"]["created"] is True
    assert len(calls(sandbox, method)) == 1


def test_an_insert_google_applies_after_we_gave_up_is_reported_created(tenant):
    sandbox, domain = tenant.stack.sandbox, new_domain()
    latency = {"method": "reseller.customers.insert", "seconds": 4.5}
    requests.post(f"{sandbox}/_sandbox/latency", json=latency, timeout=10).raise_for_status()
    # Given Google applies the first insert 7.5 s late, after our 5 s timeout gave up on it
    fault(sandbox, "reseller.customers.insert", kind="timeout", seconds=3)
    try:
        job = tenant.wait(submit(tenant, "customer.create", customer_params(domain)), timeout=90)
    finally:
        latency["seconds"] = 0
        requests.post(f"{sandbox}/_sandbox/latency", json=latency, timeout=10)
    # Then the retry's insert meets a 409 for the customer this job made, and says so
    assert job["state"] == "succeeded", job
    assert [c["status"] for c in calls(sandbox, "reseller.customers.insert")] == [200, 409]
    assert job["result"]["created"] is True
    assert len(customers(sandbox, domain)) == 1


def test_what_existed_before_the_job_is_not_reported_as_created(tenant):
    sandbox, domain = tenant.stack.sandbox, new_domain()
    first = tenant.wait(submit(tenant, "order.create", order_params(domain)))
    assert first["result"]["customer_created"] is True
    # A second order for the same customer, whose first read fails after the job was accepted
    fault(sandbox, "reseller.customers.get", kind="error", status=503, times=5)
    again = tenant.wait(submit(tenant, "order.create", order_params(domain)))
    assert again["state"] == "succeeded", again
    result = again["result"]
    assert result["customer_created"] is False and result["admin_created"] is False
    assert [s["created"] for s in result["subscriptions"]] == [False]


def test_a_license_batch_whose_answer_is_lost_assigns_each_license_once(tenant):
    sandbox, domain = tenant.stack.sandbox, new_domain()
    assert tenant.wait(submit(tenant, "order.create", order_params(domain)))["state"] == (
        "succeeded"
    )
    accept_tos(sandbox, domain)
    fault(sandbox, "licensing.licenseAssignments.insert", kind="applied_response_lost")
    params = {"customer": domain, "sku_id": STARTER, "users": [f"ada@{domain}"]}
    job = tenant.wait(submit(tenant, "license.assign", params))
    assert job["state"] == "succeeded", job
    assert licenses(sandbox, STARTER) == {f"ada@{domain}"}


def test_the_same_message_delivered_twice_runs_the_job_once(tenant):
    sandbox, domain = tenant.stack.sandbox, new_domain()
    requests.post(
        f"{sandbox}/_sandbox/latency",
        json={"method": "reseller.customers.insert", "seconds": 1},
        timeout=10,
    ).raise_for_status()
    try:
        job_id = submit(tenant, "customer.create", customer_params(domain))
        broker = make_broker(tenant.stack.settings)
        send_job(broker, job_id)  # a duplicate, while the first is being worked on
        job = tenant.wait(job_id)
        send_job(broker, job_id)  # and one after it finished
        time.sleep(1)
    finally:
        requests.post(
            f"{sandbox}/_sandbox/latency",
            json={"method": "reseller.customers.insert", "seconds": 0},
            timeout=10,
        )
    job = tenant.job(job_id)
    assert job["state"] == "succeeded" and job["attempts"] == 1
    assert len(calls(sandbox, "reseller.customers.insert")) == 1
    assert len(customers(sandbox, domain)) == 1


def test_transient_faults_end_in_success_and_show_as_retrying(tenant):
    sandbox, domain = tenant.stack.sandbox, new_domain()
    fault(sandbox, "reseller.customers.get", status=429, reason="rateLimitExceeded", times=2)
    fault(sandbox, "reseller.subscriptions.insert", status=503, reason="backendError")
    fault(sandbox, "directory.users.get", kind="timeout", seconds=7)  # past the 5s socket timeout
    job = tenant.wait(submit(tenant, "order.create", order_params(domain)), timeout=90)
    assert job["state"] == "succeeded", job
    assert job["attempts"] >= 2  # the 503 on an insert is retried by the job, not blindly
    retrying = [
        e
        for e in events(tenant.stack.settings, job["id"], "state")
        if e[2].get("state") == "retrying"
    ]
    assert retrying and retrying[0][2]["delay_seconds"] > 0
    google = [e[2] for e in events(tenant.stack.settings, job["id"], "google_call")]
    assert {"status": 429, "reason": "rateLimitExceeded"}.items() <= google[0].items()
    assert any(g["status"] == 503 for g in google)
    assert any(g["status"] is None and g["method"] == "directory.users.get" for g in google)
    assert len(subscriptions(sandbox, domain)) == 1


def test_a_permanent_refusal_fails_at_once_with_googles_reason_and_a_hint(tenant):
    sandbox, domain = tenant.stack.sandbox, new_domain()
    fault(
        sandbox,
        "reseller.customers.insert",
        status=403,
        reason="accessNotConfigured",
        message="Google Workspace Reseller API has not been used in project 1 before",
    )
    job = tenant.wait(submit(tenant, "customer.create", customer_params(domain)))
    assert job["state"] == "failed" and job["attempts"] == 1
    error = job["error"]
    assert (error["code"], error["google_status"], error["google_reason"]) == (
        "google_refused",
        403,
        "accessNotConfigured",
    )
    assert "Enable the API" in error["hint"]
    assert customers(sandbox, domain) == []


def test_a_revoked_grant_parks_its_instance_while_others_carry_on_then_resumes(
    tenant, another_tenant
):
    stack, sandbox = tenant.stack, tenant.stack.sandbox
    other = another_tenant
    # Given the first instance works (its access token is cached)
    warm = tenant.wait(submit(tenant, "customer.create", customer_params(new_domain())))
    assert warm["state"] == "succeeded"
    # When the distributor's admin revokes our access at Google
    sandbox_post(sandbox, "/_sandbox/revoke", {"client_id": tenant.client_id, "user": tenant.admin})
    parked = [submit(tenant, "customer.create", customer_params(new_domain())) for _ in range(2)]
    carried = submit(other, "customer.create", customer_params(new_domain()))
    # Then the instance's jobs wait for re-authentication, the other instance's job succeeds
    jobs = wait_all(tenant, parked, states={"waiting_reauth", *FINAL})
    assert [j["state"] for j in jobs] == ["waiting_reauth", "waiting_reauth"], jobs
    assert "Re-authenticate" in jobs[0]["error"]["hint"]
    assert other.wait(carried)["state"] == "succeeded"
    with session_scope(stack.settings.database_url) as s:
        inst = s.exec(
            select(Instance)
            .join(Distributor, Distributor.id == Instance.distributor_id)
            .where(Instance.client_id == tenant.client_id)
        ).one()
        assert inst.status == "needs_reauth" and "invalid_grant" in (inst.last_error or "")
    # When the instance is authenticated again
    grant = sandbox_post(
        sandbox,
        "/_sandbox/tokens",
        {"client_id": tenant.client_id, "user": tenant.admin, "scopes": list(REQUIRED_SCOPES)},
    )
    vault = Vault(stack.settings.secret_keys.split(","))
    with session_scope(stack.settings.database_url) as s:
        inst = s.get(Instance, inst.id)
        store_oauth_grant(
            s,
            inst,
            vault=vault,
            refresh_token=grant["refresh_token"],
            scopes=grant["scope"].split(),
            authenticated_as=tenant.admin,
        )
        resumed = resume_waiting_jobs(s, inst.id)
    assert sorted(resumed) == sorted(parked)
    broker = make_broker(stack.settings)
    for job_id in resumed:
        send_job(broker, job_id)
    # Then the parked jobs finish by themselves
    assert [j["state"] for j in wait_all(tenant, parked)] == ["succeeded", "succeeded"]


def test_jobs_whose_messages_vanish_with_redis_are_re_sent_by_the_sweep(tenant):
    stack, sandbox = tenant.stack, tenant.stack.sandbox
    requests.post(
        f"{sandbox}/_sandbox/latency",
        json={"method": "reseller.customers.get", "seconds": 0.5},
        timeout=10,
    ).raise_for_status()
    domains = [new_domain() for _ in range(6)]
    try:
        ids = [submit(tenant, "customer.create", customer_params(d)) for d in domains]
        # When Redis (or RabbitMQ) loses every queued message in the middle of the run
        lose_queued_messages(stack.settings)
    finally:
        requests.post(
            f"{sandbox}/_sandbox/latency",
            json={"method": "reseller.customers.get", "seconds": 0},
            timeout=10,
        )
    settings = stack.settings.model_copy(update={"resend_after_seconds": 1.0})
    broker = make_broker(settings)
    # Then the scheduler's sweep sends them again and every job finishes, once
    jobs = wait_all(
        tenant, ids, between=lambda: sweep(settings, lambda j: send_job(broker, j)), timeout=90
    )
    assert [j["state"] for j in jobs] == ["succeeded"] * len(ids), jobs
    for d in domains:
        assert len(customers(sandbox, d)) == 1
    assert len(calls(sandbox, "reseller.customers.insert")) == len(domains)


def test_many_jobs_of_one_instance_share_one_access_token(tenant):
    from pipeline import state

    def live_tokens():
        return state(tenant.stack.sandbox)["tokens"]["access_tokens_live"]

    before = live_tokens()  # the fixture's own grant
    ids = [submit(tenant, "customer.create", customer_params(new_domain())) for _ in range(6)]
    assert [j["state"] for j in wait_all(tenant, ids)] == ["succeeded"] * 6
    # One refresh at Google for the instance, not one per job (nor per worker thread)
    assert live_tokens() - before == 1


def test_a_disabled_instance_holds_its_jobs_and_calls_no_google_until_enabled(tenant):
    settings, sandbox = tenant.stack.settings, tenant.stack.sandbox
    with session_scope(settings.database_url) as s:
        instance = s.exec(select(Instance).where(Instance.client_id == tenant.client_id)).one()
        set_enabled(s, instance, enabled=False)
    # When billing submits an order for a disabled instance
    domain = new_domain()
    job_id = submit(tenant, "customer.create", customer_params(domain))
    held = tenant.wait(job_id, states={"waiting_reauth", *FINAL})
    # Then it is accepted and waits, with a hint, and nothing reached Google
    assert held["state"] == "waiting_reauth", held
    assert "enabled again" in held["error"]["hint"]
    assert calls(sandbox, "reseller.*") == []
    # When the instance is enabled again, the job resumes and finishes
    with session_scope(settings.database_url) as s:
        instance = s.exec(select(Instance).where(Instance.client_id == tenant.client_id)).one()
        set_enabled(s, instance, enabled=True)
        resumed = resume_waiting_jobs(s, instance.id)
    assert resumed == [job_id]
    broker = make_broker(settings)
    for resumed_id in resumed:
        send_job(broker, resumed_id)
    assert tenant.wait(job_id)["state"] == "succeeded"
    assert len(customers(sandbox, domain)) == 1
