"""Taking SQLite's write lock without SQLite's long naps.

SQLite has one writer at a time. A connection that finds the lock taken calls its busy handler,
which sleeps 1, 2, 5, 10, 15, 20, 25 ... up to 100 ms between tries: behind the workers' short
transactions (a millisecond or so each) an order could wait tens of milliseconds for a lock that
was free most of that time. `lock_for_writing` asks again after 0.2 ms, then 0.4, ... at most
every 2 ms, with the connection's own busy_timeout as its patience. PostgreSQL has row locks and
needs none of this.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

FIRST_PAUSE_SECONDS = 0.0002
LONGEST_PAUSE_SECONDS = 0.002


def lock_for_writing(conn: Connection) -> None:
    """On SQLite, begin the connection's transaction holding the write lock (BEGIN IMMEDIATE),
    trying again every fraction of a millisecond while another writer has it; the transaction
    then ends with the session's commit or rollback. Elsewhere, or when a transaction is open
    already (its lock is its own business), nothing."""
    if conn.dialect.name != "sqlite":
        return
    raw: Any = conn.connection.dbapi_connection
    if raw is None or raw.in_transaction:
        return
    (patience_ms,) = raw.execute("PRAGMA busy_timeout").fetchone()
    raw.execute("PRAGMA busy_timeout = 0")  # busy: answered at once, retried here
    try:
        deadline = time.monotonic() + patience_ms / 1000
        pause = FIRST_PAUSE_SECONDS
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                    # As SQLAlchemy would have raised it: the web answers 503, nothing recorded.
                    raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE_SECONDS)
    finally:
        raw.execute(f"PRAGMA busy_timeout = {int(patience_ms)}")
