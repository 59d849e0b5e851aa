"""`bss bench --scenario kill` and `--scenario license-bulk`: a worker SIGKILLed mid-run, and
one license job for many users at a low License Manager quota."""

from __future__ import annotations

import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import click
import requests
from sqlmodel import col, select

from bss.db import session_scope
from bss.models import Job, JobState
from bss.tools.bench import Stack, _order, bench_stack

FINAL = ("succeeded", "failed", "cancelled")
STARTER = "1010020027"


def load() -> str:
    """The machine's load, said beside every figure."""
    return f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"


def demo_project(sandbox: str) -> str:
    """The sandbox project of the demo instance's OAuth client."""
    state = requests.get(f"{sandbox}/_sandbox/state", timeout=10).json()
    clients = state.get("clients") or []
    if isinstance(clients, dict):
        clients = list(clients.values())
    return str(next(c["project"] for c in clients if c.get("name") == "Demo provisioning"))


class Api:
    """The billing API of a bench stack."""

    def __init__(self, stack: Stack) -> None:
        self.base = stack.base
        self.headers = {"Authorization": f"Bearer {stack.api_key}"}

    def submit(self, body: dict[str, Any]) -> str:
        resp = requests.post(
            f"{self.base}/api/v1/jobs", json=body, headers=self.headers, timeout=30
        )
        resp.raise_for_status()
        return str(resp.json()["id"])

    def job(self, job_id: str) -> dict[str, Any]:
        resp = requests.get(f"{self.base}/api/v1/jobs/{job_id}", headers=self.headers, timeout=30)
        resp.raise_for_status()
        return dict(resp.json())


def _stamp(value: datetime | None) -> float:
    return value.timestamp() if value else 0.0


def run_kill(*, orders: int, worker_threads: int, google_latency: float) -> bool:
    """Two worker processes; one SIGKILLed when a third of the orders are done. Prints how
    long its jobs waited to be taken over, the kill → last job time, and duplicates at Google."""
    with bench_stack(worker_processes=1, worker_threads=worker_threads) as stack:
        victim = stack.supervisor.python(
            "worker-killable",
            "-m",
            "dramatiq",
            "workers",
            "--processes",
            "1",
            "--threads",
            str(worker_threads),
        )
        requests.post(
            f"{stack.sandbox}/_sandbox/latency", json={"seconds": google_latency}, timeout=10
        ).raise_for_status()
        api, tag = Api(stack), uuid.uuid4().hex[:6]
        started = time.time()
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda n: api.submit(_order(n, f"kill-{tag}")), range(orders)))
        db = stack.settings.database_url

        def finished() -> int:
            with session_scope(db) as s:
                return len(s.exec(select(Job.id).where(col(Job.state).in_(list(FINAL)))).all())

        while finished() < orders // 3:
            time.sleep(0.2)
        with session_scope(db) as s:
            running = s.exec(select(Job).where(Job.state == JobState.RUNNING)).all()
            owners = {j.id: j.lease_owner or "" for j in running}
        victims = {
            job_id
            for job_id, owner in owners.items()
            if _pgid(owner.split(":")[1] if owner.count(":") >= 2 else "") == victim.pid
        }
        os.killpg(victim.pid, signal.SIGKILL)
        killed_at = time.time()
        victim.wait(10)
        click.echo(
            f"kill: SIGKILLed one of 2 worker processes after {killed_at - started:.1f} s, "
            f"{len(victims)} of its jobs running"
        )
        while finished() < orders:
            time.sleep(0.5)
        with session_scope(db) as s:
            jobs = s.exec(select(Job).where(col(Job.id).in_(ids))).all()
        last = max(_stamp(j.finished_at) for j in jobs)
        rest = max((_stamp(j.finished_at) for j in jobs if j.id not in victims), default=last)
        taken = [_stamp(j.started_at) - killed_at for j in jobs if j.id in victims]
        state = requests.get(f"{stack.sandbox}/_sandbox/state", timeout=30).json()
        domains = [
            c["customerDomain"] for c in state["customers"] if f"-{tag}-" in c["customerDomain"]
        ]
        duplicates = len(domains) - len(set(domains))
        failed = sum(1 for j in jobs if j.state != JobState.SUCCEEDED)
        click.echo(
            f"kill: {orders} customer.create, Google latency {google_latency} s/call; "
            f"the killed worker's {len(victims)} running job(s) restarted at most "
            f"{max(taken, default=0):.1f} s after the kill (goal <= 30); kill -> last job "
            f"finished {last - killed_at:.1f} s, {max(last - rest, 0):.1f} s after the last of "
            f"the other jobs; {duplicates} duplicate customers at Google, {failed} jobs not "
            f"succeeded; {load()}"
        )
        return duplicates == 0 and failed == 0 and max(taken, default=0) <= 30


def _pgid(pid: str) -> int | None:
    try:
        return os.getpgid(int(pid))
    except (ValueError, OSError):
        return None


def run_license_bulk(*, users: int, per_second: float, worker_threads: int) -> bool:
    """`license.assign` for `users` users with a License Manager quota of `per_second` at
    Google and the same pace configured here; prints the progress and the ratio to the bound."""
    with bench_stack(
        worker_processes=1,
        worker_threads=worker_threads,
        env={"BSS_QUOTA_LICENSING": str(per_second)},
        quiet_sandbox=True,
    ) as stack:
        api, sandbox = Api(stack), stack.sandbox
        domain = f"bulk-{uuid.uuid4().hex[:6]}.example"
        order = {
            "customer": {**_order(0, "bulk")["params"], "domain": domain},
            "admin": {"primary_email": f"ada@{domain}", "given_name": "A", "family_name": "B"},
            "subscriptions": [{"sku_id": STARTER, "plan": "FLEXIBLE", "seats": users + 10}],
        }
        body = {"instance": "demo", "operation": "order.create", "params": order}
        ordered = api.job(api.submit(body))
        while ordered["state"] not in FINAL:
            time.sleep(0.3)
            ordered = api.job(ordered["id"])
        requests.post(f"{sandbox}/_sandbox/customers/{domain}/accept-tos", timeout=10)
        people = [f"user{n:04}@{domain}" for n in range(users)]
        for email in people:
            requests.post(
                f"{sandbox}/_sandbox/customers/{domain}/users", json={"email": email}, timeout=10
            ).raise_for_status()
        quota = {"project": demo_project(sandbox), "api": "licensing.googleapis.com"}
        requests.post(
            f"{sandbox}/_sandbox/quotas", json={**quota, "per_second": per_second}, timeout=10
        ).raise_for_status()
        requests.delete(f"{sandbox}/_sandbox/calls", timeout=10)
        params = {"customer": domain, "sku_id": STARTER, "users": people}
        started = time.perf_counter()
        job = api.job(
            api.submit({"instance": "demo", "operation": "license.assign", "params": params})
        )
        shown = -1
        while job["state"] not in FINAL:
            time.sleep(1)
            job = api.job(job["id"])
            done = (job.get("progress") or {}).get("done", 0)
            if done * 10 // users > shown:
                shown = done * 10 // users
                click.echo(
                    f"  {time.perf_counter() - started:6.0f} s  {job['state']:<13} "
                    f"{done}/{users} users"
                )
        took = time.perf_counter() - started
        calls = requests.get(
            f"{sandbox}/_sandbox/calls",
            params={"method": "licensing.*", "limit": "100000"},
            timeout=30,
        ).json()["calls"]
        limited = sum(1 for c in calls if c.get("status") in (403, 429))
        bound = users / per_second
        click.echo(
            f"license-bulk: {users} users at {per_second:g} call/s: {job['state']} in "
            f"{took:.0f} s; the quota's bound is {bound:.0f} s, ratio {took / bound:.2f} "
            f"(goal <= 1.1); {len(calls)} License Manager calls, {limited} rate-limited; "
            f"{job['attempts']} attempt(s); {load()}"
        )
        return bool(job["state"] == "succeeded" and took <= 1.1 * bound)
