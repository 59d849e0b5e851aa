"""A worker process's threads take turns to write to SQLite (bss.db.writer_turn): the next one
starts when the last one's transaction ends, rather than napping in SQLite's busy handler."""

from __future__ import annotations

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
