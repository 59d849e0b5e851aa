"""A worker process's threads, and the worker processes, take turns to write to SQLite
(bss.db.writer_turn): the next one starts when the last one's transaction ends, rather than
napping in SQLite's busy handler."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading
import time

from bss.db import writer_turn


def test_on_sqlite_a_second_thread_writes_after_the_first_and_a_thread_may_nest(tmp_path):
    url = f"sqlite:///{tmp_path / 'turns.db'}"
    order: list[str] = []
    first_in = threading.Event()

    def first() -> None:
        # a nested transaction of the same thread does not wait for its own turn
        with writer_turn(url), writer_turn(url):
            order.append("first begins")
            first_in.set()
            time.sleep(0.2)
            order.append("first commits")

    def second() -> None:
        first_in.wait(5)
        with writer_turn(url):
            order.append("second begins")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert order == ["first begins", "first commits", "second begins"]


def test_on_postgresql_threads_do_not_wait_for_each_other():
    # PostgreSQL locks rows, not the database: a process's transactions run side by side
    url = "postgresql+psycopg://bss@db.example:5432/bss"
    inside = threading.Barrier(2, timeout=5)

    def write() -> None:
        with writer_turn(url):
            inside.wait()  # both are inside at once, or this breaks after 5 s

    threads = [threading.Thread(target=write) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not inside.broken


HOLD_IN_ANOTHER_PROCESS = """
import sys, time
from bss.db import writer_turn
with writer_turn(sys.argv[1]):
    print("in", flush=True)
    time.sleep(60)
"""


def _enters_turn(url: str) -> threading.Event:
    """A thread of this process that takes the turn: the event is set once it is in."""
    entered = threading.Event()

    def take() -> None:
        with writer_turn(url):
            entered.set()

    threading.Thread(target=take, daemon=True).start()
    return entered


def test_worker_processes_take_turns_and_one_killed_in_its_turn_holds_up_no_other(tmp_path):
    # Given another worker process in its turn to write to the same database
    url = f"sqlite:///{tmp_path / 'turns.db'}"
    args = [sys.executable, "-c", HOLD_IN_ANOTHER_PROCESS, url]
    with subprocess.Popen(args, stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "in"
            # When this process wants its turn, it waits
            entered = _enters_turn(url)
            assert not entered.wait(0.5)
            # And when the other is killed in the middle of its turn, this one goes on at once
            holder.kill()
            assert entered.wait(5)
        finally:
            holder.kill()


def test_a_worker_forked_from_a_process_that_wrote_waits_for_its_parents_turn(tmp_path):
    # Given a process that wrote (its lock file is open), then forked a worker
    url = f"sqlite:///{tmp_path / 'turns.db'}"
    with writer_turn(url):
        pass
    fork = multiprocessing.get_context("fork")
    go, child_in = fork.Event(), fork.Event()

    def child() -> None:
        go.wait(10)
        with writer_turn(url):
            child_in.set()

    process = fork.Process(target=child)
    process.start()
    try:
        # When the parent is in its turn, the child waits for it (a descriptor inherited
        # across fork would share the parent's lock, and let both write at once)
        with writer_turn(url):
            go.set()
            assert not child_in.wait(0.5)
        # And it goes on when the parent's turn ends
        assert child_in.wait(5)
    finally:
        process.join(10)
        process.kill()
