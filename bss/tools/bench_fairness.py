"""`bss bench --scenario fairness`: distributor A floods the stack with orders, then distributor B
sends one; how long B waits, against an idle stack, and what A's throughput is.

Orders go over the billing API (HTTP), A's from a pool of concurrent clients, as billing systems
send them. Times are read from the job rows (accepted -> succeeded)."""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import click
import requests
from sqlalchemy import func
from sqlmodel import col, select

from bss.accounts import distributor_by_slug
from bss.db import session_scope
from bss.jobs import set_weight
from bss.models import Job, JobState
from bss.settings import Settings
from bss.tools.bench import Stack, _order, bench_stack
from bss.tools.demo import DEMO_SLUG, IDLE_POLL_MS, PREFETCH, dramatiq_consumer_env
from bss.tools.sandbox_tenant import sandbox_tenant

FINAL = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
IDLE_SAMPLES = 3
FLOOD_SAMPLES = 5
# A's weight while measuring the plain throughput: a share of slots x 1000, i.e. every job sent
# to the broker as soon as it is accepted, as before fair sharing.
UNLIMITED_WEIGHT = 1000.0
# The scenario measures how the worker threads are shared, not Google's quotas: both projects
# get a Reseller API quota far above what the stack can do (a large reseller's, raised at Google).
ENV = {"BSS_QUOTA_RESELLER": "1000"}


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@dataclass
class Client:
    """A distributor's billing system: its API key, and the tag of its orders."""

    base: str
    api_key: str
    tag: str

    def submit(self, n: int) -> str:
        resp = requests.post(
            f"{self.base}/api/v1/jobs",
            json=_order(n, self.tag),
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=60,
        )
        resp.raise_for_status()
        return str(resp.json()["id"])


def second_distributor(stack: Stack) -> str:
    """Distributor B: its own reseller, OAuth client, authenticated instance and API key."""
    b = sandbox_tenant(
        stack.sandbox,
        stack.settings,
        name="Distributor B",
        slug="distributor-b",
        instance="demo",  # the name the bench's orders give
        reseller=f"reseller-b-{uuid.uuid4().hex[:6]}.example",
        redirect_uris=[f"{stack.base}/cb"],
        api_key_label="bench",
    )
    assert b.api_key is not None
    return b.api_key


def _jobs(settings: Settings, ids: list[str]) -> list[Job]:
    with session_scope(settings.database_url) as s:
        return list(s.exec(select(Job).where(col(Job.id).in_(ids))).all())


def _wait(settings: Settings, ids: list[str]) -> None:
    while True:
        with session_scope(settings.database_url) as s:
            left = s.exec(
                select(func.count())
                .select_from(Job)
                .where(col(Job.id).in_(ids), col(Job.state).not_in(list(FINAL)))
            ).one()
        if not left:
            return
        time.sleep(0.1)


def _not_started(settings: Settings, ids: list[str]) -> int:
    with session_scope(settings.database_url) as s:
        return s.exec(
            select(func.count())
            .select_from(Job)
            .where(col(Job.id).in_(ids), col(Job.started_at).is_(None))
        ).one()


def _one(settings: Settings, client: Client, n: int) -> Job:
    """One order, sent alone and waited for."""
    job_id = client.submit(n)
    _wait(settings, [job_id])
    [job] = _jobs(settings, [job_id])
    if job.state != JobState.SUCCEEDED:
        raise click.ClickException(f"B's order {job_id} ended {job.state}: {job.error}")
    return job


def _times(job: Job) -> tuple[float, float, float]:
    """Accepted -> finished, of which waiting for a worker, and running."""
    assert job.finished_at is not None and job.started_at is not None
    return (
        (job.finished_at - job.created_at).total_seconds(),
        (job.started_at - job.created_at).total_seconds(),
        (job.finished_at - job.started_at).total_seconds(),
    )


def _flood(a: Client, orders: int, concurrency: int) -> list[str]:
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(a.submit, range(orders)))


def _throughput(settings: Settings, ids: list[str]) -> tuple[float, dict[str, int]]:
    rows = _jobs(settings, ids)
    first = min(j.created_at for j in rows)
    last = max(j.finished_at or j.created_at for j in rows)
    states = {st: sum(1 for j in rows if j.state == st) for st in {j.state for j in rows}}
    return len(rows) / (last - first).total_seconds(), states


def _set_weight(settings: Settings, slug: str, weight: float) -> None:
    with session_scope(settings.database_url) as s:
        set_weight(s, distributor_by_slug(s, slug), weight)


def run_fairness(
    *,
    orders: int,
    concurrency: int,
    worker_processes: int,
    worker_threads: int,
    google_latency: float,
) -> bool:
    """B's one order on an idle stack; A's plain throughput (every job sent at once); then A
    sends `orders` orders and B one: B's time, its ratio to idle, A's throughput. False when an
    order did not succeed."""
    with bench_stack(
        worker_processes=worker_processes,
        worker_threads=worker_threads,
        env=ENV,
        quiet_sandbox=True,
    ) as stack:
        settings = stack.settings
        requests.post(
            f"{stack.sandbox}/_sandbox/latency", json={"seconds": google_latency}, timeout=10
        ).raise_for_status()
        tag = uuid.uuid4().hex[:6]
        a = Client(stack.base, stack.api_key, f"a{tag}")
        b = Client(stack.base, second_distributor(stack), f"b{tag}")
        slots = settings.fair_share_slots
        consumer = dramatiq_consumer_env(worker_threads)
        click.echo(
            f"fairness: {worker_processes} worker process(es) x {worker_threads} threads, "
            f"BSS_FAIR_SHARE_SLOTS={slots}, Dramatiq prefetch "
            f"{consumer.get(PREFETCH, os.environ.get(PREFETCH))} and idle poll "
            f"{consumer.get(IDLE_POLL_MS, os.environ.get(IDLE_POLL_MS))} ms, "
            f"Google latency {google_latency * 1000:.0f} ms per "
            f"call, Reseller API quota {settings.quota_reseller:g} calls/s per project, "
            f"customer.create orders over HTTP ({concurrency} concurrent clients for A)"
        )
        # B alone, on an idle stack (after a first order that warms the token cache)
        _one(settings, b, 10_000)
        idle = sorted(_times(_one(settings, b, n)) for n in range(IDLE_SAMPLES))
        b_idle, idle_wait, idle_run = idle[len(idle) // 2]
        click.echo(
            f"B alone: accepted -> succeeded {b_idle:.2f} s (waited {idle_wait:.2f} s for a "
            f"worker, ran {idle_run:.2f} s; median of {', '.join(f'{t[0]:.2f}' for t in idle)}); "
            f"load average {_load()}"
        )
        # A's plain throughput: all of A's orders sent to the broker at once
        _set_weight(settings, DEMO_SLUG, UNLIMITED_WEIGHT)
        plain_ids = _flood(a, orders, concurrency)
        _wait(settings, plain_ids)
        plain, plain_states = _throughput(settings, plain_ids)
        _set_weight(settings, DEMO_SLUG, 1.0)
        click.echo(
            f"A alone, every job sent at once (as before fair sharing): {orders} orders at "
            f"{plain:.1f} jobs/s, {plain_states}; load average {_load()}"
        )
        # The flood: A sends its orders, then B sends one (and a few more after it, one at a
        # time, while A's backlog lasts: one figure is at the mercy of a busy moment)
        a.tag = f"a2{tag}"
        flood_ids = _flood(a, orders, concurrency)
        backlog = _not_started(settings, flood_ids)
        b_load = _load()
        b_job = _one(settings, b, 20_000)
        left = _not_started(settings, flood_ids)
        more = [_one(settings, b, 20_001 + n) for n in range(FLOOD_SAMPLES - 1)]
        more_left = _not_started(settings, flood_ids)
        b_flood, b_wait, b_run = _times(b_job)
        b_median = sorted(_times(j) for j in [b_job, *more])[FLOOD_SAMPLES // 2]
        _wait(settings, flood_ids)
        fair, fair_states = _throughput(settings, flood_ids)
        ratio = b_flood / b_idle
        click.echo(
            f"A floods with {orders} orders; when they were all accepted {backlog} had not "
            f"started, when B's order succeeded {left} still had not\n"
            f"B during the flood: accepted -> {b_job.state} {b_flood:.2f} s = {ratio:.2f} x "
            f"idle (goal <= 2: {'met' if ratio <= 2 else 'NOT met'}); waited {b_wait:.2f} s for "
            f"a worker, ran {b_run:.2f} s; load average {b_load}\n"
            f"B's next {FLOOD_SAMPLES - 1} orders, one after the other ({more_left} of A's "
            f"still not started after them): median of all {FLOOD_SAMPLES} {b_median[0]:.2f} s = "
            f"{b_median[0] / b_idle:.2f} x idle (waited {b_median[1]:.2f} s, ran "
            f"{b_median[2]:.2f} s)\n"
            f"A during the flood: {fair:.1f} jobs/s = {fair / plain:.2f} x plain "
            f"({fair_states}); load average {_load()} on {os.cpu_count()} CPUs"
        )
        succeeded = plain_states.get(JobState.SUCCEEDED, 0) + fair_states.get(JobState.SUCCEEDED, 0)
        return succeeded == 2 * orders and b_job.state == JobState.SUCCEEDED
