"""Listings at scale, as the app leaves its database: the planner's statistics are refreshed by
the app itself (after migrations, and by the scheduler), and with them every listing the bench
measures uses the index meant for it: checked with the database's own query plans, never with a
stopwatch. And the faster queries answer exactly what the slower ones did: every job once,
newest first, ties on created_at included.

SQLite always; PostgreSQL too when BSS_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, event, insert, text
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from bss import migrate
from bss.accounts import ALL
from bss.db import get_engine, refresh_statistics
from bss.jobs import (
    CANCELLABLE,
    RETRYABLE,
    JobFilters,
    JobSearch,
    encode_cursor,
    job_batches,
    list_jobs,
    page_of_jobs,
    sweep_forever,
)
from bss.models import Distributor, Instance, Job, utcnow
from bss.monitoring import finished_buckets
from bss.settings import Settings
from bss.tools.bench_listing_seed import Seeded, seed_jobs

# Enough that SQLite weighs indexes as it does at a million (at 20,000 some bad plans cost too
# little for it to avoid them).
JOBS = 50_000


def _new_database(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Callable[[], None]]:
    """A database of its own (the shared one stays small), and how to drop it."""
    server = os.environ.get("BSS_TEST_DATABASE_URL")
    if not server:
        url = f"sqlite:///{tmp_path_factory.mktemp('listing') / 'jobs.db'}"
        return url, lambda: get_engine(url).dispose()
    name = f"bss_listing_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        get_engine(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def _refreshed(url: str) -> list[str]:
    """The app's statistics refresh, once it sees the load (PostgreSQL counts changes a few
    seconds late)."""
    deadline = time.monotonic() + 20
    while True:
        analyzed = refresh_statistics(url)
        if analyzed or time.monotonic() > deadline:
            return analyzed
        time.sleep(0.5)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Seeded]]:
    """Migrated, then 50,000 jobs shaped like the bench's, then the scheduler's refresh."""
    url, drop = _new_database(tmp_path_factory)
    migrate.upgrade(url)
    seeded = seed_jobs(get_engine(url), JOBS)
    assert _refreshed(url), "the statistics refresh analyzed nothing after a bulk load"
    get_engine(url).dispose()  # new connections read the new statistics, as a web process's
    yield url, seeded
    drop()


def plans(engine: Engine, run: Callable[[Session], Any]) -> list[str]:
    """The plan of every job query `run(session)` sends, as the database explains it."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):  # type: ignore[no-untyped-def]
        if "job" in statement and not statement.lstrip().upper().startswith("EXPLAIN"):
            captured.append((statement, parameters))

    with engine.connect() as conn:
        event.listen(conn, "before_cursor_execute", capture)
        run(Session(bind=conn))
        event.remove(conn, "before_cursor_execute", capture)
        prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
        out = []
        for statement, parameters in captured:
            rows = conn.exec_driver_sql(prefix + statement, parameters).all()
            out.append(
                "\n".join(str(r[-1] if engine.dialect.name == "sqlite" else r[0]) for r in rows)
            )
        conn.rollback()
    assert out, "no query was sent"
    return out


def no_full_scan_or_sort(engine: Engine, plan: str, *, batch: bool = False) -> None:
    """Neither the whole table read nor every matching row sorted: LIMIT must stop the walk.
    Sorting the ties on created_at is fine, and so is merging a batch's per-state walks (each
    bounded by the batch's size)."""
    if engine.dialect.name == "sqlite":
        for line in plan.splitlines():
            assert not (line.startswith("SCAN job") and "INDEX" not in line), plan
            assert batch or not line.startswith("USE TEMP B-TREE FOR ORDER BY"), plan
    else:
        assert "Seq Scan on job" not in plan, plan
        assert batch or not re.search(r"(^|->)\s*Sort\s+\(", plan, re.M), plan


def test_the_api_finds_a_job_by_its_external_ref_through_its_index(loaded):
    # Given a million-job shape loaded in bulk and the app's own statistics refresh since
    url, seeded = loaded
    sample = next(s for s in seeded.samples if s["external_ref"])
    engine = get_engine(url)

    # When billing asks for its job by external_ref
    def run(session: Session) -> None:
        page, _ = list_jobs(
            session,
            distributor_id=sample["distributor_id"],
            filters=JobFilters(external_ref=sample["external_ref"]),
        )
        assert [j.id for j in page] == [sample["id"]]

    # Then the database looks the ref up, rather than reading the distributor's every job
    (plan,) = plans(engine, run)
    assert "ix_job_external_ref" in plan, plan


@pytest.mark.parametrize("where", ["api", "dashboard"])
def test_a_cursor_twenty_days_back_reads_a_page_not_the_jobs_before_it(loaded, where):
    url, seeded = loaded
    target = seeded.now - timedelta(days=20)
    sample = min(seeded.samples, key=lambda s: abs(s["created_at"] - target))
    cursor = encode_cursor(Job(id=sample["id"], created_at=sample["created_at"]))

    def run(session: Session) -> None:
        if where == "api":
            page, _ = list_jobs(
                session,
                distributor_id=sample["distributor_id"],
                filters=JobFilters(),
                cursor=cursor,
            )
        else:
            page, _ = page_of_jobs(session, scope=ALL, search=JobSearch(), cursor=cursor)
        assert len(page) == 50 and page[0].created_at <= sample["created_at"]

    (plan,) = plans(get_engine(url), run)
    no_full_scan_or_sort(get_engine(url), plan)
    # The index is entered at the cursor: "created_at <=" bounds its range, where "created_at
    # < t OR (created_at = t AND id < x)" leaves it to walk every newer job first.
    bounded = (
        r"SEARCH job USING .*created_at<" if "sqlite" in url else r"Index Cond: .*created_at <"
    )
    assert re.search(bounded, plan), plan


@pytest.mark.parametrize("scope", ["operator", "distributor"])
def test_the_overviews_charts_read_the_finished_jobs_of_the_window_only(loaded, scope):
    url, seeded = loaded
    engine = get_engine(url)
    chosen = ALL if scope == "operator" else seeded.distributors[0]

    def run(session: Session) -> None:
        finished_buckets(session, scope=chosen, window=timedelta(days=1), buckets=24)

    (plan,) = plans(engine, run)
    if engine.dialect.name == "sqlite":
        # from the (state, finished_at, distributor_id) index alone, not every job the
        # distributor ever finished
        assert "COVERING INDEX ix_job_state_finished" in plan, plan
    else:
        assert "Seq Scan on job" not in plan, plan


@pytest.mark.parametrize(
    "search",
    [
        JobSearch(),
        JobSearch(instance_id=3),
        JobSearch(operation="license.assign"),
        JobSearch(distributor_id=3, operation="license.assign"),
    ],
    ids=["all", "instance", "operation", "distributor and operation"],
)
def test_a_bulk_actions_batches_walk_each_states_index(loaded, search):
    url, seeded = loaded
    engine = get_engine(url)
    bounded = search.model_copy(update={"created_before": seeded.now})

    def run(session: Session) -> None:
        batches = job_batches(session, scope=ALL, search=bounded, states=RETRYABLE, size=200)
        next(batches, None)

    (plan,) = plans(engine, run)
    no_full_scan_or_sort(engine, plan, batch=True)
    # One walk per state, each with the state in its index's range: with "state IN (...)" no
    # index gives the order, and the walk passes every job of the other states.
    if engine.dialect.name == "sqlite":
        searches = [line for line in plan.splitlines() if line.startswith("SEARCH job")]
        assert len(searches) == len(RETRYABLE), plan
        assert all("state=?" in line for line in searches), plan
    else:
        assert "ANY (" not in plan and plan.count("Index") >= len(RETRYABLE), plan


@pytest.fixture(scope="module")
def tied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A small database whose 240 jobs share 12 creation times: ties everywhere."""
    url, drop = _new_database(tmp_path_factory)
    migrate.upgrade(url)
    now = utcnow()
    states = ["succeeded", "failed", "cancelled", "waiting_reauth", "queued"]
    rows = [
        {
            "id": f"job_{n:04d}{uuid.uuid4().hex[:8]}",
            "distributor_id": 1 + n % 2,
            "instance_id": 1 + n % 2,
            "operation": ["order.create", "license.assign"][n % 3 % 2],
            "params": {},
            "request_hash": "0" * 64,
            "state": states[n % 5],
            "attempts": 1,
            "checkpoint": {},
            "created_at": now - timedelta(minutes=n % 12),
            "updated_at": now,
            "finished_at": now - timedelta(minutes=n % 12) if n % 5 < 3 else None,
        }
        for n in range(240)
    ]
    with get_engine(url).begin() as conn:
        conn.execute(
            insert(Distributor),
            [{"id": d, "name": f"D{d}", "slug": f"d{d}", "created_at": now} for d in (1, 2)],
        )
        conn.execute(
            insert(Instance),
            [
                {
                    "id": i,
                    "distributor_id": i,
                    "name": f"i{i}",
                    "created_at": now,
                    "updated_at": now,
                }
                for i in (1, 2)
            ],
        )
        conn.execute(insert(Job), rows)
    yield url, rows
    drop()


def newest_first(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in sorted(rows, key=lambda r: (r["created_at"], r["id"]), reverse=True)]


def test_paging_the_api_and_the_dashboard_shows_every_job_once_in_order(tied):
    url, rows = tied
    with Session(get_engine(url)) as session:
        seen, cursor = [], None
        while True:  # the API, 7 at a time, through 12 runs of equal creation times
            page, cursor = list_jobs(
                session, distributor_id=1, filters=JobFilters(), limit=7, cursor=cursor
            )
            seen += [j.id for j in page]
            if cursor is None:
                break
        assert seen == newest_first([r for r in rows if r["distributor_id"] == 1])
        seen, cursor = [], None
        while True:  # the dashboard's operator, filtered by operation
            page, cursor = page_of_jobs(
                session,
                scope=ALL,
                search=JobSearch(operation="license.assign"),
                limit=9,
                cursor=cursor,
            )
            seen += [j.id for j in page]
            if cursor is None:
                break
        assert seen == newest_first([r for r in rows if r["operation"] == "license.assign"])


@pytest.mark.parametrize("states", [RETRYABLE, CANCELLABLE, ("failed",)])
def test_a_bulk_action_meets_each_job_of_its_states_once_newest_first(tied, states):
    url, rows = tied
    with Session(get_engine(url)) as session:
        batches = list(job_batches(session, scope=ALL, search=JobSearch(), states=states, size=7))
    met = [j.id for batch in batches for j in batch]
    assert met == newest_first([r for r in rows if r["state"] in states])
    assert all(len(b) == 7 for b in batches[:-1])


def test_the_scheduler_takes_the_statistics_of_a_table_that_grew(tmp_path, redis_url):
    # Given a database the app migrated while it was empty, then 2,000 jobs loaded
    url = f"sqlite:///{tmp_path / 'grown.db'}"
    migrate.upgrade(url)
    seed_jobs(get_engine(url), 2000)
    settings = Settings(
        BSS_HOME=tmp_path,
        DATABASE_URL=url,
        REDIS_URL=redis_url,
        GOOGLE_SANDBOX_URL="http://127.0.0.1:9",
        BSS_SWEEP_INTERVAL_SECONDS=0.2,
    )
    stop = threading.Event()
    scheduler = threading.Thread(target=sweep_forever, args=(settings, lambda _id: None, stop))

    def job_statistics() -> int:
        with get_engine(url).connect() as conn:
            if not conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE name='sqlite_stat1'"
            ).first():
                return 0
            return (
                conn.exec_driver_sql("SELECT count(*) FROM sqlite_stat1 WHERE tbl='job'").scalar()
                or 0
            )

    assert job_statistics() == 0
    # When the scheduler runs
    scheduler.start()
    try:
        deadline = time.monotonic() + 30
        while job_statistics() == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        scheduler.join(timeout=30)
    # Then the planner has statistics of every index of the job table, and they are fresh: the
    # next refresh has nothing to do until the table grows by a quarter (a partial index, whose
    # few rows come and go, is taken on its condition: bss.db)
    with get_engine(url).connect() as conn:
        indexes = conn.exec_driver_sql(
            "SELECT count(*) FROM sqlite_master WHERE type='index' AND tbl_name='job' "
            "AND (sql IS NULL OR sql NOT LIKE '% WHERE %')"
        ).scalar()
    assert job_statistics() == indexes
    assert refresh_statistics(url) == []
    # When the table grows by more than a quarter, the next refresh takes them again
    with get_engine(url).begin() as conn:
        copies = [
            {**row._asdict(), "id": f"copy_{row.id}", "idempotency_key": None}
            for row in conn.execute(sa_select(Job.__table__).limit(600))  # type: ignore[attr-defined]
        ]
        conn.execute(insert(Job), copies)
    assert "ix_job_external_ref" in refresh_statistics(url)
