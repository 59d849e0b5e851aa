"""Upgrading a busy database: the migrations build the job table's indexes without stopping
orders from being written (PostgreSQL's CREATE INDEX CONCURRENTLY), and a build that failed
half-way is finished by the next upgrade. Real PostgreSQL (BSS_TEST_DATABASE_URL); on SQLite,
the same migrations still bring a database up and down."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import inspect, text

from bss import migrate
from bss.db import get_engine
from tests.support.databases import new_database

SERVER = os.environ.get("BSS_TEST_DATABASE_URL")


@pytest.fixture
def empty_database(tmp_path) -> Iterator[str]:
    """A database of its own, with no schema yet."""
    with new_database(tmp_path / "upgrade.db", "bss_online") as url:
        yield url


def job_indexes(url: str) -> set[str]:
    with get_engine(url).connect() as conn:
        return {i["name"] for i in inspect(conn).get_indexes("job")}  # type: ignore[misc]


def test_the_job_indexes_come_and_go_with_their_migrations(empty_database):
    migrate.upgrade(empty_database, "0004")
    assert "ix_job_customer_line" not in job_indexes(empty_database)
    migrate.upgrade(empty_database)
    built = job_indexes(empty_database)
    assert {"ix_job_customer_line", "ix_job_in_flight", "ix_job_state_finished"} <= built
    assert "ix_job_state_instance" not in built  # replaced in 0010
    migrate.downgrade(empty_database, "0009")
    assert "ix_job_state_finished" not in job_indexes(empty_database)
    assert "ix_job_state_instance" in job_indexes(empty_database)
    migrate.upgrade(empty_database)
    assert job_indexes(empty_database) == built


def _waiting_index_build(url: str) -> bool:
    with get_engine(url).connect() as conn:
        return (
            conn.execute(
                text(
                    "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                    "AND query ILIKE 'CREATE INDEX%' AND wait_event_type IS NOT NULL"
                )
            ).first()
            is not None
        )


def test_orders_are_written_while_an_upgrade_builds_an_index(empty_database):
    if not SERVER:
        pytest.skip("SQLite has one writer at a time: an upgrade is done with the service down")
    migrate.upgrade(empty_database, "0011")
    engine = get_engine(empty_database)
    # Given an order being written (its transaction holds what an INSERT into job holds)
    writing = engine.connect()
    writing.execute(text("LOCK TABLE job IN ROW EXCLUSIVE MODE"))
    # When the upgrade to 0012 starts building its index
    upgraded: list[BaseException | None] = []

    def upgrade() -> None:
        try:
            migrate.upgrade(empty_database, "0012")
            upgraded.append(None)
        except BaseException as exc:  # reported by the test below
            upgraded.append(exc)

    thread = threading.Thread(target=upgrade, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not _waiting_index_build(empty_database):
            assert thread.is_alive() and time.monotonic() < deadline, upgraded
            time.sleep(0.05)
        # Then another order is written meanwhile, without waiting for the build
        with engine.connect() as other:
            other.execute(text("SET lock_timeout = '2s'"))
            other.execute(text("LOCK TABLE job IN ROW EXCLUSIVE MODE"))
            other.commit()
    finally:
        # And the build ends once the first order is written
        writing.commit()
        writing.close()
        thread.join(30)
    assert upgraded == [None]
    assert "ix_job_customer_line" in job_indexes(empty_database)


def test_an_index_build_that_failed_half_way_is_done_again(empty_database):
    if not SERVER:
        pytest.skip("only PostgreSQL leaves an invalid index behind a failed build")
    migrate.upgrade(empty_database, "0011")
    # Given the index left INVALID, as a CREATE INDEX CONCURRENTLY that failed leaves it
    with get_engine(empty_database).begin() as conn:
        conn.execute(text('CREATE INDEX "ix_job_customer_line" ON job (instance_id)'))
        conn.execute(
            text(
                "UPDATE pg_index SET indisvalid = false "
                "WHERE indexrelid = 'ix_job_customer_line'::regclass"
            )
        )
    # When the upgrade runs again
    migrate.upgrade(empty_database)
    # Then the index is valid, on the migration's columns
    with get_engine(empty_database).connect() as conn:
        valid, definition = conn.execute(
            text(
                "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "WHERE i.indexrelid = 'ix_job_customer_line'::regclass"
            )
        ).one()
    assert valid is True
    assert "instance_id, customer_domain, created_at, id" in definition
