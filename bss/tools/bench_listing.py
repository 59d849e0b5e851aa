"""`bss bench --scenario listing`: every job listing users have, at a million jobs, on SQLite and
(with a PostgreSQL DATABASE_URL) on PostgreSQL, each database as the app leaves it.

Measured in process, through the functions the web handlers call (`bss.jobs.list_jobs` for
GET /api/v1/jobs, `page_of_jobs` and `count_jobs` for the dashboard's jobs page and its bulk
confirmation, `job_batches` for a bulk action, `bss.monitoring` for the overview and the
instances page), each run in a fresh session as a request has: what grows with the table is the
database's work, and that is what this measures; a request's fixed costs (routing, templates)
are the throughput bench's.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, func, select

from bss import migrate
from bss.accounts import ALL
from bss.db import get_engine, refresh_statistics
from bss.jobs import (
    CANCELLABLE,
    RETRYABLE,
    JobFilters,
    JobSearch,
    count_jobs,
    encode_cursor,
    job_batches,
    list_jobs,
    page_of_jobs,
)
from bss.models import Instance, InstanceStatus, Job
from bss.monitoring import (
    finished_buckets,
    finished_since,
    flow,
    job_counts,
    running_jobs,
    waiting_by_instance,
)
from bss.tools.bench_listing_seed import Seeded, seed_jobs

GOAL_MS = 100.0
# Shown for what it costs, but not a listing a person waits for: Prometheus reads it.
NO_GOAL = ("/metrics jobs by state",)
RUNS = 30
WARM_UP = 7
Listing = Callable[[Session, int], object]


@dataclass
class Result:
    """One database's figures: p50 and p95 per listing, and the machine's load beside them."""

    database: str
    seconds_to_seed: float
    statistics: str
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    figures: dict[str, tuple[float, float]] = field(default_factory=dict)


def _cursor_at(sample: dict[str, Any]) -> str:
    job = Job(
        id=sample["id"],
        created_at=sample["created_at"],
        distributor_id=sample["distributor_id"],
        instance_id=sample["instance_id"],
        operation=sample["operation"],
        request_hash="",
    )
    return encode_cursor(job)


def _around(seeded: Seeded, days: float) -> list[dict[str, Any]]:
    """Sampled jobs created about `days` ago (within a day), oldest first."""
    target = seeded.now - timedelta(days=days)
    near = [s for s in seeded.samples if abs((s["created_at"] - target).total_seconds()) < 86400]
    return near or sorted(seeded.samples, key=lambda s: abs(s["created_at"] - target))[:5]


def _last_pages(session: Session, seeded: Seeded) -> dict[int, str]:
    """Per distributor, a cursor 20 jobs before its oldest: the listing's last page."""
    out = {}
    for d in seeded.distributors:
        row = session.exec(
            select(Job)
            .where(col(Job.distributor_id) == d)
            .order_by(col(Job.created_at), col(Job.id))
            .offset(20)
            .limit(1)
        ).first()
        if row is not None:
            out[d] = encode_cursor(row)
    return out


def _overview(session: Session, scope: int | None) -> None:
    """Every query of the dashboard's overview (its Redis reads aside)."""
    needing = col(Instance.status).in_(
        [InstanceStatus.NEEDS_REAUTH, InstanceStatus.NOT_AUTHENTICATED]
    )
    attention = select(Instance).where(needing).limit(15)
    count = select(func.count()).select_from(Instance).where(needing)
    if scope is not ALL:
        attention = attention.where(col(Instance.distributor_id) == scope)
        count = count.where(col(Instance.distributor_id) == scope)
    session.exec(attention).all()
    session.exec(count).one()
    running_jobs(session, scope=scope)
    flow(session, scope=scope)
    finished_buckets(session, scope=scope, window=timedelta(hours=1), buckets=12)
    finished_buckets(session, scope=scope, window=timedelta(days=1), buckets=24)


def _bounded(search: JobSearch, seeded: Seeded) -> JobSearch:
    """The filter as a bulk action runs it: only jobs created before the confirmation."""
    before = min(filter(None, [search.created_before, seeded.now]))
    return search.model_copy(update={"created_before": before})


def listings(session: Session, seeded: Seeded) -> dict[str, Listing]:
    """Each listing, as a function of a session and the run's number (which varies its
    parameters: distributor, state, operation, a real external ref, day, cursor...)."""
    ds = seeded.distributors
    ops = seeded.operations
    states = ["failed", "succeeded", "queued", "waiting_reauth", "cancelled", "retrying", "running"]
    samples = seeded.samples
    back20 = _around(seeded, 20)
    last = _last_pages(session, seeded)
    instances = [i for d in ds for i in seeded.instances[d]]

    def d(i: int) -> int:
        return ds[i % len(ds)]

    def api(s: Session, filters: JobFilters, distributor: int, cursor: str | None = None) -> object:
        return list_jobs(s, distributor_id=distributor, filters=filters, cursor=cursor)

    def day(i: int) -> tuple[Any, Any]:
        start = seeded.now - timedelta(days=1 + (i * 7) % 58)
        return start, start + timedelta(days=1)

    def page(s: Session, scope: int | None, search: JobSearch, cursor: str | None = None) -> object:
        return page_of_jobs(s, scope=scope, search=search, limit=50, cursor=cursor)

    dashboard_filters = [
        JobSearch(distributor_id=ds[0], state="failed"),
        JobSearch(instance_id=instances[3]),
        JobSearch(operation="order.create"),
        JobSearch(state="waiting_reauth"),
        JobSearch(created_after=day(3)[0], created_before=day(3)[1]),
        JobSearch(distributor_id=ds[2], operation="license.assign"),
    ]
    return {
        "API newest page": lambda s, i: api(s, JobFilters(), d(i)),
        "API by state": lambda s, i: api(s, JobFilters(state=states[i % len(states)]), d(i // 7)),
        "API by operation": lambda s, i: api(s, JobFilters(operation=ops[i % len(ops)]), d(i)),
        "API by instance": lambda s, i: api(
            s, JobFilters(instance_id=seeded.instances[d(i)][0]), d(i)
        ),
        "API by external_ref": lambda s, i: api(
            s,
            JobFilters(external_ref=samples[i]["external_ref"] or "INV-none"),
            samples[i]["distributor_id"],
        ),
        "API created range (1 day)": lambda s, i: api(
            s, JobFilters(created_after=day(i)[0], created_before=day(i)[1]), d(i)
        ),
        "API cursor 20 days back": lambda s, i: api(
            s,
            JobFilters(),
            back20[i % len(back20)]["distributor_id"],
            _cursor_at(back20[i % len(back20)]),
        ),
        "API last page": lambda s, i: api(s, JobFilters(), d(i), last.get(d(i))),
        "dashboard newest page": lambda s, i: page(s, ALL if i % 2 else d(i), JobSearch()),
        "dashboard filters": lambda s, i: page(s, ALL, dashboard_filters[i % 6]),
        "dashboard customer": lambda s, i: page(
            s, ALL, JobSearch(customer_domain=samples[i]["customer_domain"])
        ),
        "dashboard search text": lambda s, i: page(
            s,
            ALL if i % 2 else samples[i]["distributor_id"],
            JobSearch(q=[samples[i]["id"], samples[i]["external_ref"] or "x"][i % 2]),
        ),
        "dashboard cursor 20 days back": lambda s, i: page(
            s, ALL, JobSearch(), _cursor_at(back20[i % len(back20)])
        ),
        "bulk confirm (count)": lambda s, i: count_jobs(
            s,
            scope=ALL,
            search=dashboard_filters[i % 6],
            states=RETRYABLE if i % 2 else CANCELLABLE,
        ),
        "bulk action first batch": lambda s, i: next(
            job_batches(
                s,
                scope=ALL,
                search=_bounded(dashboard_filters[i % 6], seeded),
                states=RETRYABLE if i % 2 else CANCELLABLE,
                size=500,
            ),
            None,
        ),
        "dashboard overview": lambda s, i: _overview(s, ALL if i % 3 else d(i)),
        "dashboard instances": lambda s, i: waiting_by_instance(s, scope=ALL if i % 2 else d(i)),
        "/metrics jobs by state": lambda s, i: (job_counts(s), finished_since(s, seconds=3600)),
    }


def _statistics(url: str) -> str:
    """What the planner knows of the job table: SQLite's sqlite_stat1, PostgreSQL's last
    (auto)analyze."""
    with get_engine(url).connect() as conn:
        if conn.dialect.name == "sqlite":
            has = conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")
            stats = "SELECT count(*), max(stat) FROM sqlite_stat1 WHERE tbl = 'job'"
            n, stat = conn.exec_driver_sql(stats).one() if has.first() else (0, None)
            return f"sqlite_stat1: {n} job indexes" + (f" ({stat.split()[0]} rows)" if stat else "")
        row = conn.execute(
            text(
                "SELECT last_analyze, last_autoanalyze, n_mod_since_analyze "
                "FROM pg_stat_user_tables WHERE relname = 'job'"
            )
        ).first()
        if row is None or (row[0] is None and row[1] is None):
            return "job never analyzed"
        return f"job analyzed; {row[2]} rows changed since"


def _measure(url: str, seeded: Seeded, runs: int) -> dict[str, tuple[float, float]]:
    engine = get_engine(url)
    with Session(engine) as setup:
        chosen = listings(setup, seeded)
    out = {}
    for name, listing in chosen.items():
        times = []
        # Untimed first: each shape of the listing once (they repeat within WARM_UP runs), as
        # a web process that served them before has its statements compiled and caches warm.
        for i in range(min(runs, WARM_UP)):
            with Session(engine) as session:
                listing(session, i)
        for i in range(runs):
            with Session(engine) as session:
                begun = time.perf_counter()
                listing(session, i)
                times.append((time.perf_counter() - begun) * 1000)
        times.sort()
        out[name] = (statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))])
        click.echo(f"  {name:32} p50 {out[name][0]:8.1f} ms  p95 {out[name][1]:8.1f} ms")
    return out


def _one_database(url: str, label: str, jobs: int, runs: int) -> Result:
    click.echo(f"{label}: migrating and seeding {jobs:,} jobs ...")
    migrate.upgrade(url)
    begun = time.monotonic()
    seeded = seed_jobs(get_engine(url), jobs)
    seconds = time.monotonic() - begun
    # What a running scheduler does within the hour after the jobs came (the app's own step,
    # not an ANALYZE of the bench's); then new connections, as a web process has within the
    # hour (a SQLite connection reads the statistics when it opens).
    analyzed = refresh_statistics(url)
    get_engine(url).dispose()
    click.echo(
        f"{label}: seeded in {seconds:.0f} s; the scheduler's statistics refresh analyzed "
        f"{len(analyzed)} {'index' if url.startswith('sqlite') else 'table'}(s); measuring "
        f"{runs} runs per listing"
    )
    result = Result(label, seconds, _statistics(url), os.getloadavg())
    result.figures = _measure(url, seeded, runs)
    result.load_after = os.getloadavg()
    get_engine(url).dispose()
    return result


def _postgresql(server: str, jobs: int, runs: int) -> Result:
    name = f"bss_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        return _one_database(url, "PostgreSQL", jobs, runs)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _print(results: list[Result]) -> bool:
    names = list(results[0].figures)
    head = "".join(f" | {r.database} p50 | p95" for r in results)
    click.echo(f"\n| listing{head} | goal p95 | met |")
    click.echo("|---" * (2 + 2 * len(results) + 1) + "|")
    met_all = True
    for name in names:
        cells = "".join(f" | {r.figures[name][0]:.1f} | {r.figures[name][1]:.1f}" for r in results)
        if name in NO_GOAL:
            click.echo(f"| {name}{cells} | — | — |")
            continue
        met = all(r.figures[name][1] <= GOAL_MS for r in results)
        met_all = met_all and met
        click.echo(f"| {name}{cells} | {GOAL_MS:.0f} ms | {'yes' if met else 'NO'} |")
    click.echo("")
    for r in results:
        load = "/".join(f"{x:.2f}" for x in r.load_before)
        after = "/".join(f"{x:.2f}" for x in r.load_after)
        click.echo(
            f"{r.database}: seeded in {r.seconds_to_seed:.0f} s; {r.statistics}; "
            f"load (1/5/15 min) {load} before, {after} after"
        )
    return met_all


def run_listing_bench(*, jobs: int, database_url: str | None, runs: int = RUNS) -> bool:
    """Seed `jobs` jobs on SQLite (and PostgreSQL when `database_url` names one), measure every
    listing, print the table; False when a listing's p95 misses the goal."""
    results = []
    with tempfile.TemporaryDirectory(prefix="bss-bench-listing-") as home:
        url = f"sqlite:///{Path(home) / 'bss.db'}"
        results.append(_one_database(url, "SQLite", jobs, runs))
    if database_url and make_url(database_url).get_backend_name() == "postgresql":
        results.append(_postgresql(database_url, jobs, runs))
    return _print(results)
