"""A job's attempts as its timeline records them, numbered across operator retries.

The job's own `attempts` counter starts again at each retry (a retry gives a fresh budget), and
each "Attempt N started" line carries that counter. Pages count the attempts on the timeline
instead, so that a job retried once after a failed attempt shows attempts 1 and 2, not 1 and 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from bss.models import JobEvent, JobState

STARTED_BY = " started by "


def _started(event: JobEvent) -> bool:
    return event.kind == "state" and event.data.get("state") == JobState.RUNNING


def attempt_rows(events: Iterable[JobEvent]) -> list[dict[str, Any]]:
    """One row per attempt (number, when, worker, Google calls, how it ended), and one per
    operator action between them ("Retried by …")."""
    rows: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    number = 0
    for e in events:
        if _started(e):
            number += 1
            current = {
                "kind": "attempt",
                "number": number,
                "at": e.at,
                # "Attempt 1 started by host:pid": the worker, whatever the counter said
                "worker": e.message.partition(STARTED_BY)[2] or e.message,
                "calls": 0,
                "outcome": None,
            }
            rows.append(current)
        elif e.kind == "resume" and current is not None:
            # the same attempt goes on after a pause or a wait for quota: its outcome is later
            current["outcome"] = None
            current["resumed"] = current.get("resumed", 0) + 1
        elif e.kind == "google_call" and current is not None:
            current["calls"] += 1
        elif e.kind == "state" and e.data.get("by"):
            retry = e.data.get("state") == JobState.QUEUED
            rows.append({"kind": "action", "at": e.at, "message": e.message, "retry": retry})
        elif e.kind == "state" and current is not None and current["outcome"] is None:
            current["outcome"] = e.message
    return rows


def google_calls(events: Iterable[JobEvent]) -> list[dict[str, Any]]:
    """Every Google call on the timeline, with the number of the attempt that made it (None for
    a call recorded before any attempt started)."""
    calls: list[dict[str, Any]] = []
    number = 0
    for e in events:
        if _started(e):
            number += 1
        elif e.kind == "google_call":
            calls.append({"at": e.at, "data": e.data, "attempt": number or None})
    return calls


def attempt_counts(session: Session, job_ids: Iterable[str]) -> dict[str, int]:
    """How many attempts each job has made, retries included, from the timelines."""
    ids = list(job_ids)
    if not ids:
        return {}
    started = (
        select(JobEvent.job_id, func.count())
        .where(
            col(JobEvent.job_id).in_(ids),
            col(JobEvent.kind) == "state",
            col(JobEvent.data)["state"].as_string() == JobState.RUNNING.value,
        )
        .group_by(col(JobEvent.job_id))
    )
    return {job_id: n for job_id, n in session.exec(started).all()}
