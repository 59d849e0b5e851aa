"""Periodic work: re-send jobs and webhooks whose message was lost or whose worker died, and
queue again the jobs that waited for an instance that works again."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from bss.broker import broker_kind, broker_url
from bss.db import STATISTICS_INTERVAL_S, refresh_statistics, session_scope
from bss.jobs.fairness import distributors_with_held_jobs, release
from bss.jobs.ordering import unblocked
from bss.jobs.orphans import requeue_from_dead_workers
from bss.models import (
    Instance,
    InstanceStatus,
    Job,
    JobState,
    WebhookDelivery,
    add_event,
    utcnow,
)
from bss.notify import lost_to_resend
from bss.settings import Settings

log = logging.getLogger(__name__)

Send = Callable[[str], None]

RELEASED_BY_SWEEP = "Sent to a worker by the scheduler: its distributor had room"


def resume_waiting_jobs(session: Session, instance_id: int) -> list[str]:
    """Jobs parked on an instance, queued again once it is authenticated (re-authenticated,
    verified or enabled); their ids, to send after commit. None while it does not work."""
    instance = session.get(Instance, instance_id)
    if instance is None or instance.status != InstanceStatus.AUTHENTICATED:
        return []
    jobs = session.exec(
        select(Job).where(Job.instance_id == instance_id, Job.state == JobState.WAITING_REAUTH)
    ).all()
    for job in jobs:
        job.state = JobState.QUEUED
        job.updated_at = utcnow()
        job.next_attempt_at = None
        session.add(job)
        add_event(
            session,
            job.id,
            "state",
            "Instance re-authenticated: queued again",
            state=JobState.QUEUED,
        )
    return [j.id for j in jobs]


def sweep(
    settings: Settings,
    send: Send,
    *,
    send_webhook: Send | None = None,
    limit: int = 500,
) -> list[str]:
    """Send again every job that should be moving but whose message may be gone.

    - queued, and sent longer ago than BSS_RESEND_AFTER_SECONDS;
    - queued and never sent (held, or the broker was away), as its distributor's share allows;
    - retrying or waiting for quota, and its next attempt is overdue by that much;
    - running, and its lease lapsed (the worker was killed);
    - waiting for re-authentication of an instance that is authenticated again;
    - waiting behind an earlier job on the same customer that has ended.
    The broker only delivers; the database is the record, so sending twice is harmless: the
    lease lets one worker run it. Pending webhook deliveries are re-sent the same way.
    Returns the ids of the jobs sent.
    """
    now = utcnow()
    stale = now - timedelta(seconds=settings.resend_after_seconds)
    ids = []
    resumed: list[str] = []
    with session_scope(settings.database_url) as s:
        for instance_id in s.exec(
            select(Job.instance_id)
            .join(Instance, col(Instance.id) == col(Job.instance_id))
            .where(
                Job.state == JobState.WAITING_REAUTH,
                Instance.status == InstanceStatus.AUTHENTICATED,
            )
            .distinct()
        ).all():
            resumed += resume_waiting_jobs(s, instance_id)
        s.flush()
        jobs = s.exec(
            select(Job)
            .where(
                or_(
                    and_(  # sent, but the message was lost (held jobs: see below)
                        col(Job.state) == JobState.QUEUED,
                        col(Job.enqueued_at) < stale,
                        col(Job.updated_at) < stale,
                    ),
                    col(Job.id).in_(resumed),
                    and_(
                        col(Job.state).in_([JobState.RETRYING, JobState.WAITING_QUOTA]),
                        col(Job.next_attempt_at) < stale,
                    ),
                    and_(
                        col(Job.state) == JobState.RUNNING,
                        col(Job.lease_expires_at) < now,
                        # at the first sweep after the lease lapsed, then once per
                        # BSS_RESEND_AFTER_SECONDS (not at every sweep until taken)
                        or_(
                            col(Job.enqueued_at).is_(None),
                            col(Job.enqueued_at) < col(Job.lease_expires_at),
                            col(Job.enqueued_at) < stale,
                        ),
                    ),
                )
            )
            .limit(limit)
        ).all()
        jobs = list(jobs) + [j for j in unblocked(s, limit) if j not in jobs]
        for job in jobs:
            send(job.id)
            job.enqueued_at = now
            if job.state in (JobState.RETRYING, JobState.WAITING_QUOTA):
                job.next_attempt_at = now
            s.add(job)
            add_event(s, job.id, "sweep", "Message sent again by the scheduler", state=job.state)
            ids.append(job.id)
    # Held jobs (never sent) go through their distributor's fair share, as when its jobs end:
    # this makes up for a release that was lost (a worker died, the broker was away).
    for distributor_id in distributors_with_held_jobs(settings):
        ids += release(settings, distributor_id, send, note=RELEASED_BY_SWEEP)
    if ids:
        log.info("sweep re-sent %d job(s)", len(ids))
    if send_webhook is not None:
        sweep_webhooks(settings, send_webhook, limit=limit)
    return ids


def sweep_webhooks(settings: Settings, send: Send, *, limit: int = 500) -> list[str]:
    """Send again pending webhook deliveries whose message is overdue."""
    with session_scope(settings.database_url) as s:
        ids = lost_to_resend(
            s,
            WebhookDelivery,
            sent_at="updated_at",
            now=utcnow(),
            resend_after_seconds=settings.resend_after_seconds,
            limit=limit,
        )
        for delivery_id in ids:  # before commit: a broker that refuses leaves them unmarked
            send(delivery_id)
    if ids:
        log.info("sweep re-sent %d webhook deliver%s", len(ids), "y" if len(ids) == 1 else "ies")
    return ids


def sweep_forever(
    settings: Settings, send: Send, stop: threading.Event, *, send_webhook: Send | None = None
) -> None:
    """Sweep every BSS_SWEEP_INTERVAL_SECONDS until `stop` is set; refresh the database
    planner's statistics at start and hourly (listings pick their index by them)."""
    statistics_due = 0.0
    while not stop.is_set():
        try:
            if broker_kind(settings) == "redis":
                requeue_from_dead_workers(settings.redis_url, broker_url(settings))
            sweep(settings, send, send_webhook=send_webhook)
        except Exception:  # the scheduler must outlive a database or Redis hiccup
            log.exception("sweep failed; trying again next interval")
        if time.monotonic() >= statistics_due:
            statistics_due = time.monotonic() + STATISTICS_INTERVAL_S
            try:
                analyzed = refresh_statistics(settings.database_url)
                if analyzed:
                    log.info("statistics refreshed: %s", ", ".join(analyzed))
            except Exception:
                log.exception("refreshing the planner's statistics failed; again in an hour")
        stop.wait(settings.sweep_interval_seconds)
