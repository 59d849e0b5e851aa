"""Periodic work: re-send jobs whose message was lost or whose worker died."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import and_, or_
from sqlmodel import select

from bss.db import session_scope
from bss.jobs import add_event
from bss.models import Job, JobState, utcnow
from bss.settings import Settings

log = logging.getLogger(__name__)


def sweep(settings: Settings, send: Callable[[str], None], *, limit: int = 500) -> list[str]:
    """Send again every job that should be moving but whose message may be gone.

    - queued, and sent (or accepted) longer ago than BSS_RESEND_AFTER_SECONDS;
    - retrying, and its next attempt is overdue by that much;
    - running, and its lease lapsed (the worker was killed).
    The broker only delivers; the database is the record, so sending twice is harmless: the
    lease lets one worker run it.
    """
    now = utcnow()
    stale = now - timedelta(seconds=settings.resend_after_seconds)
    with session_scope(settings.database_url) as s:
        jobs = s.exec(
            select(Job)
            .where(
                or_(
                    and_(
                        Job.state == JobState.QUEUED,
                        Job.updated_at < stale,
                        or_(Job.enqueued_at.is_(None), Job.enqueued_at < stale),
                    ),  # type: ignore[union-attr,operator]
                    and_(Job.state == JobState.RETRYING, Job.next_attempt_at < stale),  # type: ignore[operator]
                    and_(Job.state == JobState.RUNNING, Job.lease_expires_at < now),  # type: ignore[operator]
                )
            )
            .limit(limit)
        ).all()
        ids = []
        for job in jobs:
            send(job.id)
            job.enqueued_at = now
            if job.state == JobState.RETRYING:
                job.next_attempt_at = now
            s.add(job)
            add_event(s, job.id, "sweep", "Message sent again by the scheduler", state=job.state)
            ids.append(job.id)
    if ids:
        log.info("sweep re-sent %d job(s)", len(ids))
    return ids


def run_forever(settings: Settings, send: Callable[[str], None], stop: threading.Event) -> None:
    """Sweep every BSS_SWEEP_INTERVAL_SECONDS until `stop` is set."""
    while not stop.is_set():
        try:
            sweep(settings, send)
        except Exception:  # the scheduler must outlive a database or Redis hiccup
            log.exception("sweep failed; trying again next interval")
        stop.wait(settings.sweep_interval_seconds)
