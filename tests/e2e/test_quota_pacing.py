"""Google's per-project quotas are kept by every worker together: calls wait their turn instead
of meeting rate-limit answers, and a job that must wait long gives its thread back and says why."""

from __future__ import annotations

import sys
import time

import requests
from pipeline import calls, customer_params, new_domain, sandbox_post, state
from sqlmodel import select

from bss.broker import make_broker
from bss.crypto import hash_api_key
from bss.db import session_scope
from bss.models import ApiKey, Instance
from bss.tools import free_port
from tests.e2e.test_worker_killed import submit_directly, worker_env

JOBS = 50
QUOTA = 4  # Reseller API calls per second


def sandbox_project(tenant) -> str:
    """The sandbox's Cloud project of the tenant's OAuth client."""
    [project] = [
        c["project"]
        for c in state(tenant.stack.sandbox)["clients"]
        if c["client_id"] == tenant.client_id
    ]
    return project


def set_instance_quotas(tenant, quotas: dict | None) -> None:
    with session_scope(tenant.stack.settings.database_url) as s:
        key = s.exec(select(ApiKey).where(ApiKey.key_hash == hash_api_key(tenant.api_key))).one()
        instance = s.exec(
            select(Instance).where(
                Instance.distributor_id == key.distributor_id, Instance.name == tenant.instance
            )
        ).one()
        instance.quotas = quotas
        s.add(instance)


def test_two_worker_processes_keep_to_the_projects_quota(tenant, supervisor, tmp_path, own_broker):
    stack, sandbox = tenant.stack, tenant.stack.sandbox
    # Given Google allows the tenant's Cloud project 4 Reseller API calls per second
    project = sandbox_project(tenant)
    sandbox_post(
        sandbox,
        "/_sandbox/quotas",
        {"project": project, "api": "reseller.googleapis.com", "per_second": QUOTA},
    )
    # And two worker processes of this test's own, four threads each, pacing at that quota
    metrics_port = free_port()
    env = worker_env(
        stack,
        own_broker.redis_url,
        BSS_BROKER_URL=own_broker.broker_url,
        BSS_QUOTA_RESELLER=str(QUOTA),
        dramatiq_prom_port=str(metrics_port),
        dramatiq_prom_host="127.0.0.1",
        dramatiq_prom_db=str(tmp_path),
    )
    supervisor.start(
        "quota-workers",
        [sys.executable, "-m", "dramatiq", "workers", "--processes", "2", "--threads", "4"],
        env=env,
    )
    broker = make_broker(stack.settings.model_copy(update=own_broker.update))
    # When billing sends 50 new customers at once (two Reseller API calls each)
    ids = [
        submit_directly(tenant, "customer.create", customer_params(new_domain()), broker)
        for _ in range(JOBS)
    ]
    deadline = time.monotonic() + 120
    pending = set(ids)
    while pending:
        assert time.monotonic() < deadline, [tenant.job(i) for i in list(pending)[:3]]
        pending = {i for i in pending if tenant.job(i)["state"] not in ("succeeded", "failed")}
        time.sleep(0.5)
    # Then every job succeeded
    assert {tenant.job(i)["state"] for i in ids} == {"succeeded"}
    # And Google rarely had to say "too fast" (unpaced, 455 of 571 calls heard it). The pace's
    # headroom leaves 53 ms in each second of the sandbox's strict one-second window; a call
    # sent that much late, behind a CPU shared with the rest of a loaded suite, meets the next
    # one on time within the window: CI saw 3 of 119 once.
    made = [c for c in calls(sandbox, "reseller.*") if c["project"] == project]
    limited = [c for c in made if c["status"] == 429]
    assert len(made) >= 2 * JOBS
    assert len(limited) <= 0.05 * len(made), (len(limited), len(made))
    # And the workers' metrics show the time calls waited for the project's quota (the project
    # named by its number, nothing secret)
    number = tenant.client_id.split("-", 1)[0]
    body = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    waited = f'bss_quota_wait_seconds_total{{api="reseller",project="{number}"}}'
    assert any(
        line.startswith(waited) and float(line.split()[-1]) > 0 for line in body.splitlines()
    )
    assert tenant.client_secret not in body


def test_a_job_waiting_for_quota_says_so_and_resumes(tenant):
    # Given the instance may make one Reseller API call every five seconds
    set_instance_quotas(tenant, {"reseller": 0.2})
    try:
        # When billing creates a customer (a lookup, then an insert)
        resp = tenant.submit("customer.create", customer_params(new_domain()))
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["id"]
        # Then the job gives its thread back to wait for the quota, and billing reads why
        job = tenant.wait(job_id, {"waiting_quota", "succeeded", "failed"}, timeout=30)
        assert job["state"] == "waiting_quota", job
        assert "reseller API quota" in job["wait_reason"], job
        assert "0.2 calls/s" in job["wait_reason"]
    finally:
        set_instance_quotas(tenant, None)
    # And it resumes by itself, without spending an attempt on the wait
    job = tenant.wait(job_id, timeout=30)
    assert job["state"] == "succeeded", job
    assert job["attempts"] == 1
