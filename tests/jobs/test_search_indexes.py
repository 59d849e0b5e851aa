"""The job listing stays fast with a million jobs: every query the dashboard runs for a filter is
served by an index, checked with the database's own query plan (not with a stopwatch).

SQLite always; PostgreSQL too when BSS_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bss import migrate
from bss.accounts import ALL
from bss.db import get_engine
from bss.jobs import RETRYABLE, JobSearch, count_jobs, page_of_jobs
from bss.models import Distributor, Instance, Job, utcnow
from bss.monitoring import finished_buckets, waiting_by_instance
from tests.support.databases import new_database

JOBS = 24_000
STATES = ["succeeded"] * 16 + ["failed", "queued", "retrying", "waiting_reauth", "cancelled"]
OPERATIONS = ["customer.create", "order.create", "subscription.create", "user.create"]


@pytest.fixture(scope="module")
def big_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of its own (the shared one stays small), migrated, with many jobs."""
    with new_database(tmp_path_factory.mktemp("big") / "jobs.db", "bss_big") as url:
        migrate.upgrade(url)
        seed(get_engine(url))
        yield url


def seed(engine: Engine) -> None:
    """20 distributors, 60 instances, many jobs over 30 days, inserted in bulk."""
    rng = random.Random(7)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            insert(Distributor),
            [{"id": d, "name": f"D{d}", "slug": f"d{d}", "created_at": now} for d in range(1, 21)],
        )
        conn.execute(
            insert(Instance),
            [
                {
                    "id": i,
                    "distributor_id": (i - 1) % 20 + 1,
                    "name": f"i{i}",
                    "mode": "oauth",
                    "client_id": "",
                    "status": "authenticated",
                    "granted_scopes": "",
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(1, 61)
            ],
        )
        rows: list[dict[str, Any]] = []
        for n in range(JOBS):
            instance = rng.randint(1, 60)
            state = rng.choice(STATES)
            created = now - timedelta(seconds=rng.randint(0, 30 * 86400))
            final = state in ("succeeded", "failed", "cancelled")
            rows.append(
                {
                    "id": f"job_{n:032x}",
                    "distributor_id": (instance - 1) % 20 + 1,
                    "instance_id": instance,
                    "operation": rng.choice(OPERATIONS),
                    "params": {},
                    "customer_domain": f"c{rng.randint(1, 3000)}.example",
                    "external_ref": f"INV-{n}",
                    "idempotency_key": f"key-{n}",
                    "request_hash": "0" * 64,
                    "state": state,
                    "attempts": 1,
                    "checkpoint": {},
                    "created_at": created,
                    "updated_at": created,
                    "finished_at": created + timedelta(seconds=5) if final else None,
                }
            )
            if len(rows) == 4000:
                conn.execute(insert(Job), rows)
                rows = []
        if rows:
            conn.execute(insert(Job), rows)
        # The planner chooses by statistics, as it would on a production database.
        conn.execute(text("ANALYZE"))


def plans(engine: Engine, run) -> list[str]:  # type: ignore[no-untyped-def]
    """The query plan of every job query `run(session)` sends, as the database explains it."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):  # type: ignore[no-untyped-def]
        if "job" in statement and not statement.lstrip().upper().startswith("EXPLAIN"):
            captured.append((statement, parameters))

    with engine.connect() as conn:
        event.listen(conn, "before_cursor_execute", capture)
        run(Session(bind=conn))
        event.remove(conn, "before_cursor_execute", capture)
        out = []
        for statement, parameters in captured:
            if engine.dialect.name == "sqlite":
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
                out.append("\n".join(str(r[-1]) for r in rows))
            else:
                conn.exec_driver_sql("SET enable_seqscan = off")
                rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).all()
                out.append("\n".join(str(r[0]) for r in rows))
        conn.rollback()
    assert out, "no query was sent"
    return out


# Indexes that find one job (or a handful): sorting what they find costs nothing.
POINT_LOOKUPS = (
    "sqlite_autoindex_job_1 (id=?)",
    "sqlite_autoindex_job_2 (distributor_id=? AND idempotency_key=?)",
    "ix_job_external_ref (",
    "ix_job_idempotency_key (",
)


def assert_index_served(engine: Engine, plan: str, *, listing: bool = True) -> None:
    """`listing`: a newest-first page may walk an index in order (LIMIT stops the walk); any
    other query must search a range of one."""
    if engine.dialect.name == "sqlite":
        lines = plan.splitlines()
        searches = [line for line in lines if line.startswith(("SEARCH job", "SCAN job"))]
        point_lookup = all(any(p in line for p in POINT_LOOKUPS) for line in searches)
        for line in lines:
            # A bare "SCAN job" reads the whole table; "USING INDEX" walks an index.
            assert not (line.startswith("SCAN job") and "INDEX" not in line), plan
            # Sorting every matching row defeats LIMIT: the index must give the order (ties
            # on created_at may be sorted: "FOR RIGHT PART OF ORDER BY").
            assert point_lookup or "USE TEMP B-TREE FOR ORDER BY" not in line, plan
            assert listing or not line.startswith("SCAN job"), plan
        assert "INDEX" in plan, plan
    else:
        assert "Seq Scan on job" not in plan, plan
        assert "Index" in plan, plan


CASES: list[tuple[str, int | None, JobSearch]] = [
    ("operator, no filter", ALL, JobSearch()),
    ("one distributor", 7, JobSearch()),
    ("operator filters a distributor", ALL, JobSearch(distributor_id=3)),
    ("state", ALL, JobSearch(state="failed")),
    ("distributor and state", 4, JobSearch(state="waiting_reauth")),
    ("instance", ALL, JobSearch(instance_id=12)),
    ("operation", ALL, JobSearch(operation="order.create")),
    ("customer domain", ALL, JobSearch(customer_domain="c42.example")),
    ("search by id, external ref or key", ALL, JobSearch(q="INV-77")),
    ("distributor searches", 5, JobSearch(q="key-99")),
    ("external ref", 6, JobSearch(external_ref="INV-123")),
]


@pytest.mark.parametrize(("label", "scope", "search"), CASES, ids=[c[0] for c in CASES])
def test_each_job_filter_and_its_next_page_use_an_index(big_database, label, scope, search):
    engine = get_engine(big_database)

    def run(session: Session) -> None:
        page, cursor = page_of_jobs(session, scope=scope, search=search, limit=50)
        if cursor:  # the next page: keyset, not OFFSET
            page_of_jobs(session, scope=scope, search=search, limit=50, cursor=cursor)

    for plan in plans(engine, run):
        assert_index_served(engine, plan)


def test_the_seed_is_large_and_pages_are_full(big_database):
    with Session(get_engine(big_database)) as s:
        assert count_jobs(s, scope=ALL, search=JobSearch()) == JOBS
        page, cursor = page_of_jobs(s, scope=ALL, search=JobSearch(), limit=50)
        assert len(page) == 50 and cursor
        assert [j.created_at for j in page] == sorted((j.created_at for j in page), reverse=True)


def test_bulk_counts_charts_and_waiting_jobs_use_indexes(big_database):
    engine = get_engine(big_database)

    def run(session: Session) -> None:
        count_jobs(session, scope=ALL, search=JobSearch(instance_id=9), states=RETRYABLE)
        count_jobs(session, scope=3, search=JobSearch(), states=RETRYABLE)
        finished_buckets(session, scope=ALL, window=timedelta(hours=1), buckets=12)
        waiting_by_instance(session, scope=ALL)

    for plan in plans(engine, run):
        assert_index_served(engine, plan, listing=False)


def test_the_seeded_database_is_where_we_think(big_database):
    # Guard against the check passing on an empty table by mistake.
    assert Path(big_database.removeprefix("sqlite:///")).exists() or big_database.startswith(
        "postgresql"
    )
