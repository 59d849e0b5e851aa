"""`bss bench --scenario quota`: many jobs against a low per-project quota at Google; how much of
the quota the workers use, and how often Google still has to say "too fast"."""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import click
import requests
from sqlalchemy import func
from sqlmodel import col, select

from bss.db import session_scope
from bss.gateway import quota_usage
from bss.models import Job, JobEvent, JobState
from bss.tools.bench import _order, bench_stack

SERVICE = "reseller.googleapis.com"  # customer.create calls the Reseller API only
FINAL = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


def _demo_project(sandbox: str) -> str:
    """The sandbox's Cloud project of the demo instance's OAuth client."""
    state = requests.get(f"{sandbox}/_sandbox/state", timeout=10).json()
    return str(next(c["project"] for c in state["clients"] if c["name"] == "Demo provisioning"))


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def run_quota(
    *, jobs: int, per_second: float, worker_processes: int, worker_threads: int, concurrency: int
) -> bool:
    """`jobs` customer.create jobs while Google allows the demo project `per_second` Reseller
    API calls; prints the share of the quota used and the share of calls refused; False when
    a job did not succeed."""
    with bench_stack(
        worker_processes=worker_processes,
        worker_threads=worker_threads,
        quiet_sandbox=True,
        # The operator tells bss the quota Google gives the project (BSS_QUOTA_RESELLER, or
        # the instance's own quotas).
        env={"BSS_QUOTA_RESELLER": str(per_second)},
    ) as stack:
        project = _demo_project(stack.sandbox)
        requests.post(
            f"{stack.sandbox}/_sandbox/quotas",
            json={"project": project, "api": SERVICE, "per_second": per_second},
            timeout=10,
        ).raise_for_status()
        headers = {"Authorization": f"Bearer {stack.api_key}"}
        tag = uuid.uuid4().hex[:6]

        def submit(n: int) -> None:
            requests.post(
                f"{stack.base}/api/v1/jobs", json=_order(n, tag), headers=headers, timeout=30
            ).raise_for_status()

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(submit, range(jobs)))
        with session_scope(stack.settings.database_url) as s:
            while True:
                done = s.exec(
                    select(func.count()).select_from(Job).where(col(Job.state).in_(FINAL))
                ).one()
                if done >= jobs:
                    break
                time.sleep(0.5)
                s.expire_all()
            elapsed = time.perf_counter() - started
            states = dict(s.exec(select(Job.state, func.count()).group_by(col(Job.state))).all())
            gave_back = s.exec(
                select(func.count(func.distinct(JobEvent.job_id))).where(
                    col(JobEvent.message).startswith("Waiting for the ")
                )
            ).one()
        calls = [
            c
            for c in requests.get(
                f"{stack.sandbox}/_sandbox/calls", params={"method": "reseller.*"}, timeout=30
            ).json()["calls"]
            if c["project"] == project
        ]
        refused = sum(1 for c in calls if c["status"] == 429)
        times = sorted(_seconds(c["time"]) for c in calls)
        span = times[-1] - times[0] if len(times) > 1 else float("nan")
        sustained = (len(calls) - refused) / span
        use = [u for u in quota_usage(stack.settings) if u.api == "reseller"]
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        click.echo(
            f"jobs: {jobs} customer.create (2 Reseller API calls each), {worker_processes} "
            f"worker process(es) x {worker_threads} threads; Google allows the demo project "
            f"{per_second:g} Reseller API calls/s\n"
            f"outcome: {states} in {elapsed:.0f} s; {gave_back} jobs gave their thread back "
            f"to wait for quota at least once\n"
            f"Google calls: {len(calls)} over {span:.0f} s, {sustained:.2f} answered/s sustained"
            f" -> {sustained / per_second:.2f} of the quota (goal >= 0.9)\n"
            f"rate-limit answers: {refused} -> {refused / max(1, len(calls)):.2%} of calls "
            f"(goal <= 1 %)"
            + (
                f"\nlimiter: paced at {use[0].effective_per_second:.2f}/s of "
                f"{use[0].limit_per_second:g}/s, {use[0].rate_limited} rate-limit answers seen"
                if use
                else ""
            )
            + f"\nload average {load} on {os.cpu_count()} CPUs"
        )
        if len(calls) >= 1990:
            click.echo("note: the sandbox's call log keeps 2,000 calls; submit fewer jobs")
        return states.get(JobState.SUCCEEDED, 0) == jobs
