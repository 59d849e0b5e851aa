"""Jobs by state and how long the recent ones took, as Prometheus reads them at each scrape.

A scrape must not read every job: at a million jobs that is a tenth of a second on SQLite, in
every web process, every 15 s. So the count is split where jobs stop changing:
- jobs not ended (queued, running, waiting...) are counted at every scrape, from the state's
  index: they are few, and they are what operators watch move;
- ended jobs (succeeded, failed, cancelled) that ended more than `SETTLED_S` ago are counted at
  most once every `SETTLED_S` per process and database, and kept;
- ended jobs that ended since then are counted at every scrape, from the (state, finished_at)
  index.

The sum is exact at each scrape, except for an operator's retry of a job that had ended before
the kept count: it still counts in its old state until the next recount, at most `SETTLED_S`
later.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, literal, union_all
from sqlmodel import Session, col, select

from bss.models import Job, JobState, utcnow

ENDED = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
NOT_ENDED = tuple(s for s in JobState if s not in ENDED)
# Ended jobs older than this are counted at most this often (seconds).
SETTLED_S = 60.0
# Durations are taken from at most this many of the most recent jobs of each ended state.
DURATION_SAMPLE = 5000

Counts = dict[tuple[str, str], int]


@dataclass(frozen=True)
class _Settled:
    cut: datetime  # ended jobs with finished_at before this (or none) are in `counts`
    counts: Counter[tuple[str, str]]
    taken: float  # time.monotonic() of the count


_settled: dict[str, _Settled] = {}
_lock = threading.Lock()


def _count(session: Session, *where: Any) -> Counter[tuple[str, str]]:
    rows = session.exec(
        select(Job.state, Job.operation, func.count())
        .where(*where)
        .group_by(Job.state, Job.operation)
    ).all()
    return Counter({(str(state), op): int(n) for state, op, n in rows})


def _ended_before(session: Session, cut: datetime) -> Counter[tuple[str, str]]:
    """Ended jobs that did not end at or after `cut`: every ended job, counted from the (state,
    operation) index alone, less those that ended since, read from the (state, finished_at)
    index, in one statement (one snapshot). Reading each ended job's finished_at instead took
    2.4 s at a million jobs on SQLite; this, about 0.1 s."""
    ended = col(Job.state).in_(ENDED)
    every = select(Job.state, Job.operation, func.count()).where(ended)
    since = select(Job.state, Job.operation, literal(-1)).where(ended, col(Job.finished_at) >= cut)
    rows = session.exec(union_all(every.group_by(Job.state, Job.operation), since))  # type: ignore[call-overload]
    counts: Counter[tuple[str, str]] = Counter()
    for state, op, n in rows:
        counts[(str(state), op)] += int(n)
    return counts


def _settled_counts(session: Session, now: datetime) -> _Settled:
    key = str(session.get_bind().engine.url)
    kept = _settled.get(key)
    if kept is not None and time.monotonic() - kept.taken < SETTLED_S:
        return kept
    with _lock:  # one recount per process, whichever scrape comes first
        kept = _settled.get(key)
        if kept is None or time.monotonic() - kept.taken >= SETTLED_S:
            cut = now - timedelta(seconds=SETTLED_S)
            kept = _Settled(cut, _ended_before(session, cut), time.monotonic())
            _settled[key] = kept
        return kept


def forget_settled() -> None:
    """Drop the kept counts: the next scrape counts every ended job again."""
    with _lock:
        _settled.clear()


def job_counts(session: Session, *, now: datetime | None = None) -> Counts:
    """Jobs by (state, operation), without reading every ended job at each call."""
    settled = _settled_counts(session, now or utcnow())
    counts = _count(session, col(Job.state).in_(NOT_ENDED))
    counts.update(settled.counts)
    # The recently ended, as rows counted here: a GROUP BY would lead SQLite's planner to the
    # (state, operation) index, through every ended job, rather than the (state, finished_at)
    # range (2 s instead of 2 ms at a million jobs).
    recent = session.exec(
        select(Job.state, Job.operation).where(
            col(Job.state).in_(ENDED), col(Job.finished_at) >= settled.cut
        )
    )
    counts.update((str(state), op) for state, op in recent)
    return {k: n for k, n in counts.items() if n}


def finished_since(session: Session, *, seconds: float) -> list[dict[str, Any]]:
    """Jobs that ended in the last `seconds`: state, operation, duration. Of each of succeeded
    and failed, the most recent DURATION_SAMPLE at most, so that a busy hour costs a scrape no
    more than a quiet one."""
    since = utcnow() - timedelta(seconds=seconds)
    out: list[dict[str, Any]] = []
    for state in (JobState.SUCCEEDED, JobState.FAILED):
        rows = session.exec(
            select(Job.operation, Job.created_at, Job.finished_at)
            # one range of the (state, finished_at) index, newest first
            .where(col(Job.state) == state, col(Job.finished_at) >= since)
            .order_by(col(Job.finished_at).desc())
            .limit(DURATION_SAMPLE)
        ).all()
        out.extend(
            {
                "state": state,
                "operation": op,
                "finished_at": finished,
                "duration": (finished - created).total_seconds(),
            }
            for op, created, finished in rows
            # finished is never None here (the query compares it); the check tells the type checker
            if finished is not None
        )
    return out
