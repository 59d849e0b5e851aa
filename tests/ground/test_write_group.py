"""A worker's threads writing to SQLite at the same moment share one transaction
(bss.write_group): each gets what its own write returned or raised, a write that fails leaves
nothing and takes nobody else's write with it, and a write leaves nothing behind when its thread
is interrupted while it waits."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import event, text

from bss.db import get_engine
from bss.write_group import WriteGroup


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'group.db'}"
    with get_engine(url).begin() as conn:
        conn.execute(text("CREATE TABLE row (name TEXT PRIMARY KEY)"))
    commits: list[int] = []
    event.listen(get_engine(url), "commit", lambda _conn: commits.append(1))
    return url, commits


def _names(url: str) -> set[str]:
    with get_engine(url).connect() as conn:
        return set(conn.execute(text("SELECT name FROM row")).scalars())


class Hold:
    """Holds a write inside its group's transaction until let go."""

    def __init__(self) -> None:
        self.inside, self.go = threading.Event(), threading.Event()


def _insert(name: str, *, hold: Hold | None = None, fail: bool = False):
    def write(conn):
        conn.execute(text("INSERT INTO row (name) VALUES (:n)"), {"n": name})
        if hold is not None:  # the leader's write waits: the others queue behind it
            hold.inside.set()
            hold.go.wait(10)
        if fail:
            raise ValueError(f"{name} is not wanted")
        return f"{name} written"

    return write


def _queued(group: WriteGroup, count: int) -> None:
    """Wait until `count` writes wait in the group's queue (the order threads queue in is what
    the tests below are about, not how fast a loaded machine starts threads)."""
    deadline = time.monotonic() + 10
    while len(group._queued) < count and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(group._queued) == count


def _start_in_order(group: WriteGroup, threads: list[threading.Thread], hold: Hold) -> None:
    """Start the first thread, whose write holds the group, then each other one once the one
    before it has queued its write; then let the first go on."""
    threads[0].start()
    assert hold.inside.wait(10)  # the first write runs, and waits
    for n, t in enumerate(threads[1:], start=1):
        t.start()
        _queued(group, n)
    hold.go.set()
    for t in threads:
        t.join(15)


def _in_threads(group: WriteGroup, writes: dict[str, object], hold) -> dict[str, object]:
    """Each write from a thread of its own, queued in order behind the first; what each got."""
    got: dict[str, object] = {}

    def run(name: str, write) -> None:
        try:
            got[name] = group.write(write)
        except Exception as exc:  # what the thread's own write raised
            got[name] = exc

    threads = [threading.Thread(target=run, args=item) for item in writes.items()]
    _start_in_order(group, threads, hold)
    return got


def test_writes_of_threads_at_the_same_moment_share_a_commit_and_each_gets_its_own_result(db):
    url, commits = db
    group = WriteGroup(url)
    names = [f"w{i}" for i in range(8)]
    # When eight threads write at once, the first holding its transaction open a moment
    hold = Hold()
    writes = {name: _insert(name, hold=hold if name == "w0" else None) for name in names}
    got = _in_threads(group, writes, hold)
    # Then every write is there, each thread got its own write's result
    assert _names(url) == set(names)
    assert got == {name: f"{name} written" for name in names}
    # And the seven that came while the first was writing were committed together
    assert len(commits) == 2, commits


def test_a_failed_write_leaves_nothing_and_the_others_of_its_group_are_written(db):
    url, commits = db
    group = WriteGroup(url)
    # When one write of a group raises after its INSERT
    hold = Hold()
    writes = {
        "lead": _insert("lead", hold=hold),
        "good1": _insert("good1"),
        "bad": _insert("bad", fail=True),
        "good2": _insert("good2"),
    }
    got = _in_threads(group, writes, hold)
    # Then its thread gets its exception and its row is not written
    assert isinstance(got["bad"], ValueError) and "bad is not wanted" in str(got["bad"])
    assert "bad" not in _names(url)
    # And every other write is written, each thread told so
    assert _names(url) == {"lead", "good1", "good2"}
    assert got["good1"] == "good1 written" and got["good2"] == "good2 written"
    assert got["lead"] == "lead written"


def test_a_write_alone_commits_at_once_and_raises_its_own_error(db):
    url, commits = db
    group = WriteGroup(url)
    assert group.write(_insert("alone")) == "alone written"
    assert _names(url) == {"alone"} and len(commits) == 1
    with pytest.raises(ValueError, match="spare is not wanted"):
        group.write(_insert("spare", fail=True))
    assert _names(url) == {"alone"}
    # And the group is free for the next writer: nothing hangs after an error
    assert group.write(_insert("after")) == "after written"


class Interrupted(BaseException):
    """As Dramatiq's time limit or shutdown: raised in a thread, not by its write."""


def test_a_leader_interrupted_mid_group_leaves_its_write_out_and_the_others_to_the_next(db):
    url, _commits = db
    group = WriteGroup(url)
    interrupt_once = threading.Event()

    def caught_by_the_interrupt(conn):
        # The leader's thread is interrupted (a time limit, a shutdown) while it runs this
        # write of another thread's: the first time only
        conn.execute(text("INSERT INTO row (name) VALUES ('a')"))
        if not interrupt_once.is_set():
            interrupt_once.set()
            raise Interrupted
        return "a written"

    got: dict[str, object] = {}

    def run(name: str, write) -> None:
        try:
            got[name] = group.write(write)
        except Interrupted:
            got[name] = "interrupted"

    # When "first" writes a while, and "lead", "a" and "b" queue behind it in that order, so
    # that "lead" leads the next group, with a's and b's writes in it
    hold = Hold()
    writes = [
        ("first", _insert("first", hold=hold)),
        ("lead", _insert("lead")),
        ("a", caught_by_the_interrupt),
        ("b", _insert("b")),
    ]
    threads = [threading.Thread(target=run, args=item) for item in writes]
    _start_in_order(group, threads, hold)
    # Then the interrupted leader's own write is not there and its thread was interrupted
    assert got["lead"] == "interrupted"
    # And a's and b's writes, rolled back with the group, were written by the next leader
    assert got == {
        "first": "first written",
        "lead": "interrupted",
        "a": "a written",
        "b": "b written",
    }
    assert _names(url) == {"first", "a", "b"}
    # And the group is free for the next writer
    assert group.write(_insert("after")) == "after written"
