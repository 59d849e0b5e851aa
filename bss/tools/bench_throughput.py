"""`bss bench --scenario throughput`: customer.create orders through the billing API on a calm
stack; what accepting and running them costs, beside what Google's latency allows.

Each run submits `jobs` orders from `concurrency` clients and waits for them all. It prints:
submission (requests/s and latency), end to end (orders/s, accepted-to-finished), the ratio to
the latency bound (worker threads / (Google calls per order x latency)), and the CPU each of our
processes spent: the workers' per Google call, the web's per accepted order. With `runs` > 1
the same stack runs it again and the medians are printed; a warm-up round of WARM_UP_ORDERS
goes first, not counted. `--baseline naive` runs the naive script
(bss.gateway.naive_customer_create: client built and token refreshed per order, one order after
another) in this process against the same sandbox after each of our runs, so that both meet the
machine as it is then; the ratio is of the medians.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import click
import requests
import urllib3
from sqlalchemy import func
from sqlmodel import col, select

from bss.accounts import distributor_by_slug
from bss.crypto import vault_from_settings
from bss.db import session_scope
from bss.gateway import naive_customer_create
from bss.instances import get_instance
from bss.models import Job, JobEvent
from bss.operations import get_operation
from bss.tools.bench import Stack, _order, _pct, bench_stack
from bss.tools.bench_cpu import busy_cpu_seconds, read_cpu, self_cpu_seconds
from bss.tools.bench_flow import load
from bss.tools.demo import DEMO_INSTANCE, DEMO_SLUG

FINAL = ("succeeded", "failed", "cancelled")


@dataclass
class Run:
    """What one run measured."""

    submit_rps: float
    submit_p95_ms: float
    orders_per_s: float
    e2e_p95_s: float
    calls: int
    worker_ms_per_call: float
    web_ms_per_order: float
    # The CPU per order (ms) of the stack's other processes: the sandbox (in Google's place),
    # Redis, the scheduler, the bench itself (its clients and its polls); and the cores busy,
    # counting every process on the machine (a PostgreSQL server's too).
    others_ms_per_order: dict[str, float]
    cores_busy: float
    load: str

    def machine(self) -> str:
        others = ", ".join(f"{name} {ms:.2f}" for name, ms in self.others_ms_per_order.items())
        return (
            f"{self.cores_busy:.2f} of {os.cpu_count()} cores busy; CPU per order besides ours: "
            f"{others} ms"
        )


# How many of the run's unfinished orders each poll reads (the oldest first: they end first).
POLLED = 200


def _finished(stack: Stack, ids: list[str]) -> None:
    """Wait until every order of the run has ended. Each poll reads the oldest unfinished ones
    only: a count over all of a run's ids (thousands of bound parameters every 50 ms) took a
    sixth of a core from the stack it measures."""
    waiting = list(ids)
    with session_scope(stack.settings.database_url) as s:
        while waiting:
            polled = waiting[:POLLED]
            ended = set(
                s.exec(
                    select(Job.id).where(col(Job.id).in_(polled), col(Job.state).in_(FINAL))
                ).all()
            )
            waiting = [job_id for job_id in waiting if job_id not in ended]
            if len(ended) < len(polled):  # else the next ones may have ended too: read them now
                time.sleep(0.05)


def _one_run(stack: Stack, *, jobs: int, concurrency: int) -> Run:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    tag = uuid.uuid4().hex[:6]
    # The clients share the stack's cores: urllib3 alone, not requests over it, which took
    # twice the CPU (0.32 against 0.17 of a core at 450 orders/s) from the stack it measures.
    # A kept connection per client.
    http = urllib3.PoolManager(maxsize=concurrency, retries=False, timeout=60.0)
    url = f"{stack.base}/api/v1/jobs"
    headers["Content-Type"] = "application/json"
    latencies: list[float] = []

    def submit(n: int) -> str:
        t0 = time.perf_counter()
        resp = http.request("POST", url, body=json.dumps(_order(n, tag)), headers=headers)
        if resp.status != 202:
            raise click.ClickException(f"order {n}: HTTP {resp.status}: {resp.data[:300]!r}")
        latencies.append(time.perf_counter() - t0)
        return str(json.loads(resp.data)["id"])

    before, bench_before = read_cpu(stack.supervisor), self_cpu_seconds()
    machine_before = busy_cpu_seconds()
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        ids = list(pool.map(submit, range(jobs)))
    submitted = time.perf_counter() - started
    _finished(stack, ids)
    finished = time.perf_counter() - started
    cpu = read_cpu(stack.supervisor).since(before)
    cpu["bench"] = self_cpu_seconds() - bench_before
    machine_busy = busy_cpu_seconds() - machine_before
    with session_scope(stack.settings.database_url) as s:
        rows = s.exec(select(Job).where(col(Job.id).in_(ids))).all()
        calls = s.exec(
            select(func.count())
            .select_from(JobEvent)
            .where(col(JobEvent.job_id).in_(ids), JobEvent.kind == "google_call")
        ).one()
    failed = [j.id for j in rows if j.state != "succeeded"]
    if failed:
        raise click.ClickException(f"{len(failed)} orders did not succeed, e.g. {failed[0]}")
    e2e = [(j.finished_at - j.created_at).total_seconds() for j in rows if j.finished_at]
    return Run(
        submit_rps=jobs / submitted,
        submit_p95_ms=_pct(latencies, 0.95) * 1000,
        orders_per_s=jobs / finished,
        e2e_p95_s=_pct(e2e, 0.95),
        calls=int(calls),
        worker_ms_per_call=cpu.get("worker", 0.0) * 1000 / max(1, int(calls)),
        web_ms_per_order=cpu.get("web", 0.0) * 1000 / jobs,
        others_ms_per_order={
            name: seconds * 1000 / jobs
            for name, seconds in cpu.items()
            if name not in ("web", "worker")
        },
        cores_busy=machine_busy / finished,
        load=load(),
    )


# Orders of the round that warms a new stack up before the measured runs.
WARM_UP_ORDERS = 50


def _naive(stack: Stack, *, orders: int) -> tuple[float, float, float]:
    """The naive script's orders/s, CPU ms per Google call (in this process) and the machine's
    cores busy meanwhile."""
    settings = stack.settings
    vault = vault_from_settings(settings)
    with session_scope(settings.database_url) as s:
        demo = distributor_by_slug(s, DEMO_SLUG)
        inst = get_instance(s, distributor_id=demo.id, name=DEMO_INSTANCE)
        client_id = inst.client_id
        secret = vault.decrypt(inst.client_secret_enc or "")
        refresh = vault.decrypt(inst.refresh_token_enc or "")
    validate = get_operation("customer.create").validate
    tag = uuid.uuid4().hex[:6]
    calls, cpu0, t0, busy0 = 0, self_cpu_seconds(), time.perf_counter(), busy_cpu_seconds()
    for n in range(orders):
        params: Any = validate(_order(n, f"naive-{tag}")["params"])
        body = params.to_google()
        calls += naive_customer_create(
            settings, client_id=client_id, client_secret=secret, refresh_token=refresh, body=body
        )
    elapsed, cpu = time.perf_counter() - t0, self_cpu_seconds() - cpu0
    busy = (busy_cpu_seconds() - busy0) / elapsed
    return orders / elapsed, cpu * 1000 / max(1, calls), busy


def run_bench(
    *,
    jobs: int,
    concurrency: int,
    worker_processes: int,
    worker_threads: int,
    google_latency: float,
    runs: int = 1,
    baseline: str = "none",
) -> None:
    """Measure submission and end-to-end throughput, latency and CPU of customer.create."""
    threads = worker_processes * worker_threads
    # One distributor alone may use every worker thread, as an operator sizes the share for a
    # fleet (BSS_FAIR_SHARE_SLOTS: the messages its worker processes take at once, each its
    # threads and the 2 it takes ahead, as bss demo and compose set Dramatiq), unless set.
    slots = os.environ.get("BSS_FAIR_SHARE_SLOTS") or str(
        max(16, worker_processes * (worker_threads + 2))
    )
    with bench_stack(
        worker_processes=worker_processes,
        worker_threads=worker_threads,
        env={"BSS_FAIR_SHARE_SLOTS": slots},
    ) as stack:
        requests.post(
            f"{stack.sandbox}/_sandbox/latency", json={"seconds": google_latency}, timeout=10
        ).raise_for_status()
        bound = threads / (2 * google_latency) if google_latency else None
        click.echo(
            f"throughput: {jobs} customer.create (2 Google calls each) per run, {runs} run(s), "
            f"{concurrency} concurrent clients, {worker_processes} worker process(es) x "
            f"{worker_threads} threads (BSS_FAIR_SHARE_SLOTS={slots}), Google latency "
            f"{google_latency * 1000:.0f} ms per call"
            + (f"; latency bound {bound:.0f} orders/s" if bound else "")
        )
        # A first round on a new stack pays for what every process does once (connections,
        # statement caches, first imports); a billing import runs on a stack long started.
        _one_run(stack, jobs=WARM_UP_ORDERS, concurrency=concurrency)
        if baseline == "naive":
            _naive(stack, orders=WARM_UP_ORDERS // 5)
        naive_too = " (and the naive script's)" if baseline == "naive" else ""
        click.echo(f"  warm-up: {WARM_UP_ORDERS} orders{naive_too}, not counted")
        measured, naive = [], []
        for n in range(runs):
            run = _one_run(stack, jobs=jobs, concurrency=concurrency)
            measured.append(run)
            click.echo(
                f"  run {n + 1}: submit {run.submit_rps:.0f} req/s (p95 {run.submit_p95_ms:.0f} "
                f"ms); {run.orders_per_s:.1f} orders/s (accepted-to-finished p95 "
                f"{run.e2e_p95_s:.2f} s); worker CPU {run.worker_ms_per_call:.2f} ms per Google "
                f"call; web CPU {run.web_ms_per_order:.2f} ms per order; {run.load}"
            )
            click.echo(f"    the machine: {run.machine()}")
            if baseline == "naive":  # right after ours, on the machine as it is then
                naive.append(_naive(stack, orders=min(jobs, 200)))
                click.echo(
                    f"  naive {n + 1}: {naive[-1][0]:.1f} orders/s, {naive[-1][1]:.2f} ms CPU per "
                    f"Google call, {naive[-1][2]:.2f} of {os.cpu_count()} cores busy; ours / naive "
                    f"= {run.orders_per_s / naive[-1][0]:.2f}; {load()}"
                )

        def median(field: str) -> float:
            return statistics.median(getattr(r, field) for r in measured)

        orders = median("orders_per_s")
        click.echo(
            f"median of {runs}: {orders:.1f} orders/s"
            + (f" = {orders / bound:.2f} of the bound" if bound else "")
            + f"; submit {median('submit_rps'):.0f} req/s, p95 {median('submit_p95_ms'):.0f} ms; "
            f"worker CPU {median('worker_ms_per_call'):.2f} ms per Google call (goal <= 3); "
            f"web CPU {median('web_ms_per_order'):.2f} ms per accepted order (goal <= 3); "
            f"{median('cores_busy'):.2f} of {os.cpu_count()} cores busy"
        )
        if baseline == "naive":
            naive_orders = statistics.median(orders_per_s for orders_per_s, _, _ in naive)
            naive_cpu = statistics.median(cpu for _, cpu, _ in naive)
            click.echo(
                f"naive script (client built and token refreshed per order, one at a time), "
                f"median of {runs}, each run after ours: {naive_orders:.1f} orders/s, "
                f"{naive_cpu:.2f} ms CPU per Google call; ours / naive = "
                f"{orders / naive_orders:.2f}; worker CPU / naive = "
                f"{median('worker_ms_per_call') / naive_cpu:.2f}"
            )
