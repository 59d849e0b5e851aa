"""Group commit for a process whose many threads write to SQLite (a worker).

SQLite has one writer at a time, so a worker's threads took turns to write (bss.db.writer_turn),
a transaction each: its `BEGIN`, statements and `COMMIT` are calls into SQLite, each letting the
GIL go, and each turn handed from one thread to the next woke a thread. With Google answering
at once, the turn was held in three quarters of a run and capped a worker's orders per second.

Here the threads waiting at the same moment share one transaction: the first one leads, runs its
own write and every write queued behind it, one after another in its turn, and commits once; the
others wait for that commit and get what their own write returned, or raised. A write is a
function of the connection (or of a session on it) that touches nothing but the database, so that
it can run in the leader's thread and run again.

Should one write raise, the shared transaction is rolled back, its writer gets the exception, and
every other write of the group runs again, alone in a transaction of its own, as it would have
without the group. Should the commit fail, every writer of the group gets that error, as each
would have had its own transaction failed. A leader interrupted (Dramatiq's time limit or
shutdown, raised in its thread) rolls the group back; the writes of the others go to the next
leader.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Connection
from sqlmodel import Session

from bss.db import get_engine, writer_turn

T = TypeVar("T")

# The most writes one transaction carries: a longer group would keep its writers waiting for the
# last one's statements.
MOST_PER_GROUP = 16


class _Write(Generic[T]):
    """One thread's write, waiting for its group's commit or for its turn to lead."""

    def __init__(self, run: Callable[[Connection], T]) -> None:
        self.run = run
        self.wake = threading.Event()
        self.finished = False  # committed, or given its error
        self.lead = False  # leads a group, or was woken to (until it passes the lead on)
        self.result: T | None = None
        self.error: BaseException | None = None

    def finish(self) -> None:
        self.finished = True
        self.wake.set()

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class _Abandoned(Exception):
    """A write of the group raised: the group's transaction is rolled back."""


class WriteGroup:
    """The writes of a process's threads to one database, committed in groups (see above)."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._mutex = threading.Lock()
        self._queued: list[_Write[Any]] = []
        self._leading = False  # a thread leads, or one was woken to

    def write(self, run: Callable[[Connection], T]) -> T:
        """Run `run` (given the connection, in a transaction) in a group's transaction and
        return what it returned once that transaction committed; or raise what it raised."""
        mine: _Write[T] = _Write(run)
        with self._mutex:
            self._queued.append(mine)
            mine.lead = not self._leading
            self._leading = True
        try:
            if not mine.lead:
                mine.wake.wait()
            if mine.lead and not mine.finished:
                self._lead(mine)
        except BaseException:  # interrupted (a time limit, a shutdown): nothing left hanging
            self._withdraw(mine)
            raise
        return mine.outcome()

    def write_session(self, run: Callable[[Session], T]) -> T:
        """`write` for a write through the ORM: `run` gets a session on the group's connection,
        flushed after it returns (the group commits)."""

        def through_session(conn: Connection) -> T:
            with Session(bind=conn, expire_on_commit=False) as s:
                result = run(s)
                s.flush()
                return result

        return self.write(through_session)

    def _withdraw(self, mine: _Write[Any]) -> None:
        """A writer gives up waiting: its write leaves the queue if no leader took it yet (a
        leader that took it commits it or not), and the lead it was given passes on."""
        with self._mutex:
            if mine in self._queued:
                self._queued.remove(mine)
            if mine.lead:
                mine.lead = False
                self._pass_lead()

    def _pass_lead(self) -> None:
        """Under the mutex: wake the first queued writer to lead, or let the next one that comes
        lead."""
        if self._queued:
            successor = self._queued[0]
            successor.lead = True
            successor.wake.set()
        else:
            self._leading = False

    def _lead(self, mine: _Write[Any]) -> None:
        """Run the queued writes (this thread's among the first) in groups until this thread's
        own is done, then pass the lead on."""
        group: list[_Write[Any]] = []
        try:
            with writer_turn(self._url):
                while not mine.finished:
                    with self._mutex:
                        group = self._queued[:MOST_PER_GROUP]
                        del self._queued[:MOST_PER_GROUP]
                    if not group:  # cannot be: `mine` stays queued until finished
                        raise RuntimeError("a write left its group's queue unfinished")
                    self._commit(group)
                    group = []
        except BaseException:
            # Interrupted in this thread (a time limit, a shutdown): the group rolled back; the
            # others' writes go first to the next leader, this thread's is given up.
            with self._mutex:
                self._queued[:0] = [w for w in group if not w.finished and w is not mine]
            raise
        finally:
            with self._mutex:
                mine.lead = False
                self._pass_lead()

    def _commit(self, group: list[_Write[Any]]) -> None:
        """The group's writes in one transaction; alone each, again, if one raised."""
        failed = self._in_one(group)
        if failed is None:
            for write in group:
                write.finish()
            return
        failed.finish()
        for write in group:
            if write is not failed:
                self._in_one([write])
                write.finish()

    def _in_one(self, group: list[_Write[Any]]) -> _Write[Any] | None:
        """Run the writes in one transaction; the one that raised (the transaction then rolled
        back), or None. A failed BEGIN or COMMIT is every write's error."""
        failed: _Write[Any] | None = None
        try:
            with get_engine(self._url).begin() as conn:
                for write in group:
                    try:
                        write.error, write.result = None, write.run(conn)
                    except Exception as exc:
                        write.error, write.result = exc, None
                        failed = write
                        raise _Abandoned from exc
        except _Abandoned:
            return failed
        except Exception as exc:
            for write in group:
                write.error, write.result = exc, None
        return None


@functools.cache
def write_group(database_url: str) -> WriteGroup:
    """This process's write group for the database."""
    return WriteGroup(database_url)
