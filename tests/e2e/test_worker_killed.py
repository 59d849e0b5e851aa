"""A worker SIGKILLed in the middle of a job: the job runs again and nothing is made twice."""

from __future__ import annotations

import os
import signal
import sys
import time

import requests
from pipeline import STARTER, customers, new_domain, order_params, subscriptions, users
from sqlmodel import select

from bss import jobs
from bss.broker import make_broker, send_job
from bss.crypto import Vault, hash_api_key
from bss.db import session_scope
from bss.jobs import sweep
from bss.models import ApiKey, Distributor, Job


def start_worker(supervisor, env):
    return supervisor.start(
        "killable-worker",
        [sys.executable, "-m", "dramatiq", "workers", "--processes", "1", "--threads", "1"],
        env=env,
    )


def worker_env(stack, redis_url: str, **settings: str) -> dict[str, str]:
    """The environment of workers of a test's own, on its own Redis (and BSS_BROKER_URL, when
    given in `settings`), with these settings."""
    return {
        **{k: str(v) for k, v in os.environ.items() if k.startswith("BSS_TEST")},
        "BSS_HOME": str(stack.settings.home),
        "DATABASE_URL": stack.settings.database_url,
        "REDIS_URL": redis_url,
        "BSS_SECRET_KEYS": stack.settings.secret_keys,
        "GOOGLE_SANDBOX_URL": stack.sandbox,
        **settings,
    }


def test_a_killed_worker_leaves_a_job_that_another_finishes_without_duplicates(
    tenant, supervisor, own_broker
):
    stack, sandbox = tenant.stack, tenant.stack.sandbox
    # Given workers of their own (own broker), with a short lease so a dead one is noticed fast
    env = worker_env(
        stack,
        own_broker.redis_url,
        BSS_BROKER_URL=own_broker.broker_url,
        BSS_JOB_LEASE_SECONDS="5",
        BSS_JOB_TIME_LIMIT_SECONDS="4",
        BSS_JOB_RETRY_BASE_SECONDS="0.2",
        GOOGLE_HTTP_TIMEOUT="5",
    )
    settings = stack.settings.model_copy(update={**own_broker.update, "resend_after_seconds": 1})
    broker = make_broker(settings)
    worker = start_worker(supervisor, env)
    # And Google is slow to create subscriptions
    latency = {"method": "reseller.subscriptions.insert", "seconds": 2}
    requests.post(f"{sandbox}/_sandbox/latency", json=latency, timeout=10).raise_for_status()
    domain = new_domain()
    job_id = submit_directly(tenant, "order.create", order_params(domain), broker)
    try:
        # When the worker is killed while Google is creating the subscription
        deadline = time.monotonic() + 30
        while "admin_role" not in tenant.job(job_id)["steps_done"]:
            assert time.monotonic() < deadline, tenant.job(job_id)
            time.sleep(0.1)
        time.sleep(0.5)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        assert tenant.job(job_id)["state"] == "running"
    finally:
        latency["seconds"] = 0
        requests.post(f"{sandbox}/_sandbox/latency", json=latency, timeout=10)
    # And another worker starts, the scheduler sweeping for lapsed leases
    killed_at = time.monotonic()
    start_worker(supervisor, env)
    deadline = time.monotonic() + 60
    while tenant.job(job_id)["state"] != "succeeded":
        assert time.monotonic() < deadline, tenant.job(job_id)
        sweep(settings, lambda j: send_job(broker, j))
        time.sleep(0.5)
    # Then the job was taken over soon after the kill (a lapsed lease, not a long wait)...
    assert time.monotonic() - killed_at < 30
    # ...resumed after its last checkpoint, and Google holds one of everything
    done = tenant.job(job_id)
    assert done["attempts"] == 2
    assert len(customers(sandbox, domain)) == 1
    assert len(users(sandbox, domain)) == 1
    assert [s["skuId"] for s in subscriptions(sandbox, domain)] == [STARTER]
    # And the result says this job bought the subscription, though the killed attempt never
    # heard Google's answer
    with session_scope(stack.settings.database_url) as s:
        assert s.get(Job, job_id).result["subscriptions"][0]["created"] is True


def test_a_live_workers_long_job_is_never_taken_over(tenant, supervisor, own_broker):
    stack, sandbox = tenant.stack, tenant.stack.sandbox
    # Given two workers of their own and a lease of 3 s, much shorter than one Google call
    env = worker_env(
        stack,
        own_broker.redis_url,
        BSS_BROKER_URL=own_broker.broker_url,
        BSS_JOB_LEASE_SECONDS="3",
        GOOGLE_HTTP_TIMEOUT="20",
    )
    start_worker(supervisor, env)
    start_worker(supervisor, env)
    settings = stack.settings.model_copy(update={**own_broker.update, "resend_after_seconds": 0})
    broker = make_broker(settings)
    latency = {"method": "reseller.customers.insert", "seconds": 8}
    requests.post(f"{sandbox}/_sandbox/latency", json=latency, timeout=10).raise_for_status()
    domain = new_domain()
    try:
        job_id = submit_directly(
            tenant, "customer.create", order_params(domain)["customer"], broker
        )
        # When the scheduler sweeps all the while the first worker waits on Google
        deadline = time.monotonic() + 60
        while tenant.job(job_id)["state"] != "succeeded":
            assert time.monotonic() < deadline, tenant.job(job_id)
            sweep(settings, lambda j: send_job(broker, j))
            time.sleep(0.5)
    finally:
        latency["seconds"] = 0
        requests.post(f"{sandbox}/_sandbox/latency", json=latency, timeout=10)
    # Then its lease was kept alive: one attempt, one insert at Google
    assert tenant.job(job_id)["attempts"] == 1
    assert len(customers(sandbox, domain)) == 1


def submit_directly(tenant, operation, params, broker) -> str:
    """Accept a job as the API does and send its message through this test's own broker."""
    with session_scope(tenant.stack.settings.database_url) as s:
        key = s.exec(select(ApiKey).where(ApiKey.key_hash == hash_api_key(tenant.api_key))).one()
        job, _ = jobs.submit_job(
            s,
            distributor=s.get(Distributor, key.distributor_id),
            instance_name=tenant.instance,
            operation=operation,
            params=params,
            vault=Vault(tenant.stack.settings.secret_keys.split(",")),
        )
        s.commit()
        jobs.dispatch(s, job, lambda job_id: send_job(broker, job_id))
        return job.id
