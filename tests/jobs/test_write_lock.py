"""SQLite's write lock taken without SQLite's long naps (bss.jobs.write_lock): an order waits
about as long as the writer ahead of it, and no longer than the connection's busy_timeout."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from bss.db import get_engine
from bss.jobs.write_lock import lock_for_writing


@pytest.fixture
def sqlite_path(settings) -> str:
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite":
        pytest.skip("SQLite's write lock only")
    return str(url.database)


def hold_the_lock(path: str, seconds: float) -> threading.Event:
    """Another writer (a worker) holds the write lock for `seconds`; set once it has it."""
    taken = threading.Event()

    def writer() -> None:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        taken.set()
        time.sleep(seconds)
        other.execute("COMMIT")
        other.close()

    threading.Thread(target=writer, daemon=True).start()
    assert taken.wait(5)
    return taken


def test_the_lock_is_taken_soon_after_the_writer_ahead_lets_go(settings, sqlite_path):
    hold_the_lock(sqlite_path, 0.05)
    with get_engine(settings.database_url).connect() as conn:
        started = time.monotonic()
        lock_for_writing(conn)
        waited = time.monotonic() - started
        raw = conn.connection.dbapi_connection
        assert raw.in_transaction
        # The connection's own patience is back for its other statements
        assert raw.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
        conn.rollback()
    assert 0.04 < waited < 0.25  # (generous: a loaded machine schedules threads late)


def test_no_longer_than_the_connections_busy_timeout(settings, sqlite_path):
    hold_the_lock(sqlite_path, 0.5)
    with get_engine(settings.database_url).connect() as conn:
        raw = conn.connection.dbapi_connection
        raw.execute("PRAGMA busy_timeout = 50")
        try:
            with pytest.raises(OperationalError, match="locked"):
                lock_for_writing(conn)
            assert not raw.in_transaction
            assert raw.execute("PRAGMA busy_timeout").fetchone()[0] == 50
        finally:
            raw.execute("PRAGMA busy_timeout = 30000")
