"""Distributors share the workers: one distributor's backlog is not ahead of another's order.

(The unit tests of the same rules are tests/jobs/test_fairness.py.)"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests
from pipeline import customer_params, new_domain
from sqlmodel import col, func, select

from bss.crypto import hash_api_key
from bss.db import session_scope
from bss.jobs import set_max_in_flight
from bss.models import ApiKey, Distributor, Job

BACKLOG = 40


def _order(tenant) -> str:
    resp = tenant.submit("customer.create", customer_params(new_domain()))
    assert resp.status_code == 202, resp.text
    return resp.json()["id"]


def _cap(tenant, most: int) -> None:
    with session_scope(tenant.stack.settings.database_url) as s:
        key = s.exec(select(ApiKey).where(ApiKey.key_hash == hash_api_key(tenant.api_key))).one()
        set_max_in_flight(s, s.get(Distributor, key.distributor_id), most)


def _not_started(tenant, ids: list[str]) -> int:
    with session_scope(tenant.stack.settings.database_url) as s:
        return s.exec(
            select(func.count())
            .select_from(Job)
            .where(col(Job.id).in_(ids), col(Job.started_at).is_(None))
        ).one()


def test_another_distributors_order_is_not_behind_a_backlog(tenant, another_tenant):
    sandbox = tenant.stack.sandbox
    # Given distributor A may have 2 jobs with the workers at once (they have 2 threads), and
    # Google takes a while to answer
    _cap(tenant, 2)
    latency = {"seconds": 0.2}
    requests.post(f"{sandbox}/_sandbox/latency", json=latency, timeout=10).raise_for_status()
    try:
        # When A sends a backlog of orders, then B sends one
        with ThreadPoolExecutor(4) as pool:
            backlog = list(pool.map(lambda _n: _order(tenant), range(BACKLOG)))
        theirs = _order(another_tenant)
        # Then A's later orders wait in the database, saying why
        held = tenant.job(backlog[-1])
        assert held["state"] == "queued", held
        assert held["wait_reason"].startswith("Queued behind "), held
        assert held["wait_reason"].endswith("it runs 2 at a time."), held
        # And B's order succeeds while most of A's backlog has not started
        assert another_tenant.wait(theirs, timeout=60)["state"] == "succeeded"
        assert _not_started(tenant, backlog) >= BACKLOG // 2
    finally:
        latency["seconds"] = 0
        requests.post(f"{sandbox}/_sandbox/latency", json=latency, timeout=10)
    # And every one of A's orders succeeds in the end, each said nothing of waiting once it ran
    done = [tenant.wait(job_id, timeout=120) for job_id in backlog]
    assert [j["state"] for j in done] == ["succeeded"] * BACKLOG
    assert all(j["wait_reason"] is None for j in done)
