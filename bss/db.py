"""Database engine and sessions."""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlmodel import Session, create_engine
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random

from bss.settings import get_settings

# How often the scheduler refreshes the planner's statistics, and how long a pooled SQLite
# connection lives (it reads them when it opens).
STATISTICS_INTERVAL_S = 3600
# A table's statistics are taken again when its size moved by more than this factor since.
STATISTICS_DRIFT = 1.25
# Below this many rows a table keeps the planner's defaults.
STATISTICS_MIN_ROWS = 1000
# How much of a SQLite database file a connection maps into memory (address space, not RAM).
SQLITE_MMAP_BYTES = 1 << 30
# A pooled server connection is pinged before use when it sat in the pool for longer than this
# (bss.db._ping_when_idle).
PING_AFTER_IDLE_S = 1.0
# PostgreSQL's answers that roll a transaction back for colliding with another one, not for
# anything wrong in it (deadlock_detected, serialization_failure): running it again is right.
CONFLICT_SQLSTATES = frozenset({"40P01", "40001"})
CONFLICT_ATTEMPTS = 4

log = logging.getLogger(__name__)
T = TypeVar("T")


@functools.cache
def get_engine(database_url: str) -> Engine:
    """One engine per database URL per process."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        options: dict[str, Any] = {}
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            # Recycled hourly: a SQLite connection reads the planner's statistics once, when
            # it opens, so a new connection is how a process learns what refresh_statistics
            # found (an in-memory database would be lost with its connection).
            options["pool_recycle"] = STATISTICS_INTERVAL_S
        engine = create_engine(database_url, connect_args={"timeout": 30}, **options)
        synchronous = get_settings().sqlite_synchronous.upper()

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the web, worker and scheduler processes read while one writes.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            # Sorts and IN-lists of a statement in memory, not in a temporary file created and
            # unlinked each time; and the database file read through a memory map, not a read
            # call per page (each connection's page cache is dropped whenever another
            # connection has written, which in a busy server is at nearly every transaction).
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
            cur.close()

        return engine
    # No JIT: it compiles a query the planner thinks costly (a bulk action's batch, /metrics)
    # in 50-100 ms, where running it takes a few; an OLTP workload never earns that back.
    engine = create_engine(
        database_url,
        pool_size=10,
        max_overflow=10,
        connect_args={"options": "-c jit=off"},
    )
    _ping_when_idle(engine)
    return engine


@functools.cache
def one_trip_engine(database_url: str) -> Engine | None:
    """The database's engine in autocommit, when it is PostgreSQL, for a write that is one
    statement (bss.jobs.one_trip) or a read that stands alone: without a BEGIN and a COMMIT of
    its own, it is one round trip to the server, not three. None elsewhere: SQLite's round trips
    are calls in process, and its transactions take its one write lock."""
    engine = get_engine(database_url)
    if engine.dialect.name != "postgresql":
        return None
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use if it sat idle for over PING_AFTER_IDLE_S; a dead one
    (the server restarted, or dropped it) is replaced before the caller sees it. A connection
    back from use a moment ago is not pinged: SQLAlchemy's pool_pre_ping pinged before every
    transaction, a round trip each (40 µs of CPU and 75 µs of waiting here), several per job.
    A restart takes longer than the threshold, so every connection that lived through one is
    pinged after it."""

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < PING_AFTER_IDLE_S:
            return  # a new connection, or one in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool drops this connection and checks out another (a new one if need be).
            raise DisconnectionError("the pooled connection is gone") from exc


def refresh_statistics(database_url: str) -> list[str]:
    """Bring the query planner's statistics up to date where a table has grown or shrunk since
    they were taken (run after migrations and hourly by the scheduler); what was analyzed."""
    engine = get_engine(database_url)
    with engine.connect() as conn:
        # Each ANALYZE its own transaction: SQLite holds the write lock only while it runs.
        auto = conn.execution_options(isolation_level="AUTOCOMMIT")
        if engine.dialect.name == "sqlite":
            return _refresh_sqlite(auto)
        if engine.dialect.name == "postgresql":
            return _refresh_postgresql(auto)
    return []


def _refresh_sqlite(conn: Connection) -> list[str]:
    # One index at a time (a fraction of a second each at a million rows, not all of them at
    # once with writers waiting), and only those whose statistics are missing or stale. PRAGMA
    # optimize would not do: before SQLite 3.46 it looks only at tables its own connection
    # queried, and the scheduler's connection queries none of the listings.
    known: dict[str, str] = {}
    if conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first():
        rows = conn.exec_driver_sql("SELECT idx, stat FROM sqlite_stat1 WHERE idx IS NOT NULL")
        known = {idx: stat for idx, stat in rows}
    analyzed = []
    tables = conn.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).scalars()
    for table in list(tables):
        counted_now = conn.exec_driver_sql(f'SELECT count(*) FROM "{table}"')  # noqa: S608 - our names
        count = int(counted_now.scalar() or 0)
        if count < STATISTICS_MIN_ROWS:
            continue  # the planner's defaults suit a small table
        # Not a partial index: its rows are the table's few that meet its condition (how many
        # changes all the time), so the table's count says nothing of whether they are stale,
        # and a planner takes it on its condition, whatever its statistics.
        indexes = conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND (sql IS NULL OR sql NOT LIKE '% WHERE %')",
            (table,),
        ).scalars()
        for index in list(indexes):
            counted = int(known[index].split()[0]) if index in known else 0
            if counted and count / STATISTICS_DRIFT <= counted <= count * STATISTICS_DRIFT:
                continue
            conn.exec_driver_sql(f'ANALYZE "{index}"')
            analyzed.append(index)
    return analyzed


def _refresh_postgresql(conn: Connection) -> list[str]:
    # Autovacuum analyzes a table once a tenth of it changed; this is the same rule, for a
    # server where autovacuum is off or has not come round yet (e.g. right after a bulk load).
    stale = conn.exec_driver_sql(
        "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() "
        "AND n_mod_since_analyze > 50 + 0.1 * greatest(n_live_tup, 0)"
    ).scalars()
    analyzed = list(stale)
    for table in analyzed:
        conn.exec_driver_sql(f'ANALYZE "{table}"')
    return analyzed


def writer_turn(database_url: str) -> AbstractContextManager[Any]:
    """Held around a write transaction of a process with many writing threads (a worker): on
    SQLite, whose database has one writer at a time, the process's threads take turns here, and
    the worker processes take turns with each other at a lock on a file beside the database; the
    next one starts the moment the last commits. Meeting at SQLite's own lock instead, they
    slept in its busy handler (1, 2, 5 ... 100 ms between tries) while the lock was mostly free,
    and each wake-up cost CPU; and each worker process there was one more rival for the web's
    short INSERTs. The web and the scheduler still meet the workers at SQLite's lock. Re-entrant:
    a thread may nest transactions as before. Elsewhere (PostgreSQL locks rows), nothing."""
    return _writer_lock(database_url) if _is_sqlite(database_url) else nullcontext()


@functools.cache
def _is_sqlite(database_url: str) -> bool:
    return make_url(database_url).get_backend_name() == "sqlite"


@functools.cache
def _writer_lock(database_url: str) -> _WriterTurn:
    database = make_url(database_url).database or ""
    on_disk = database not in ("", ":memory:") and not database.startswith("file:")
    return _WriterTurn(f"{database}-writers" if on_disk else None)


class _WriterTurn:
    """A re-entrant lock for a process's threads, and for its outermost holder an exclusive
    `flock` on `path` (None: the threads' lock alone), shared by every process that writes
    through writer_turn. The kernel wakes a waiting process the moment the holder lets go, and
    lets go for a holder that dies. A turn lasts one transaction, whose statements SQLite's
    busy timeout bounds: nothing waits for the network inside one."""

    def __init__(self, path: str | None) -> None:
        self._path = path
        self._fd = -1
        self._threads = threading.RLock()
        self._depth = 0  # the holding thread's nesting; read and written under _threads only
        os.register_at_fork(after_in_child=self._forked)

    def __enter__(self) -> None:
        self._threads.acquire()
        try:
            if self._depth == 0 and self._path is not None:
                if self._fd < 0:
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        self._depth += 1

    def __exit__(self, *_exc: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._path is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _forked(self) -> None:
        """In a child process (a worker forked by its parent): turns of its own. A lock taken
        through a descriptor inherited across fork would be the parent's lock too, so the child
        opens the file again; closing its copy leaves the parent's lock as it is."""
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = -1
        self._threads = threading.RLock()
        self._depth = 0


@contextmanager
def session_scope(database_url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(get_engine(database_url), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def is_conflict(exc: BaseException) -> bool:
    """The database rolled the transaction back because it collided with another (a deadlock,
    a serialization failure), not because of what it did."""
    return isinstance(exc, DBAPIError) and (
        getattr(exc.orig, "sqlstate", None) in CONFLICT_SQLSTATES
    )


def again_on_conflict(session: Session, transaction: Callable[[], T]) -> T:
    """Run `transaction` (statements up to and including their commit, nothing sent anywhere
    before it) and, when the database rolls it back for colliding with another, roll the
    session back and run it again, a few milliseconds later, up to CONFLICT_ATTEMPTS times."""

    def rolled_back(state: Any) -> None:
        session.rollback()
        exc = state.outcome.exception()  # its text would carry the statement's parameters
        log.warning(
            "transaction rolled back by the database (SQLSTATE %s); run again",
            getattr(getattr(exc, "orig", None), "sqlstate", "?"),
        )

    for attempt in Retrying(
        retry=retry_if_exception(is_conflict),
        stop=stop_after_attempt(CONFLICT_ATTEMPTS),
        wait=wait_random(0.002, 0.02),
        before_sleep=rolled_back,
        reraise=True,
    ):
        with attempt:
            return transaction()
    raise AssertionError("unreachable: Retrying returns or raises")  # pragma: no cover
