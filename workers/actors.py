"""Thin actors: receive an id, hand it to bss, let bss record the outcome."""

from __future__ import annotations

import functools
import os
import socket
import threading

import dramatiq

from bss.broker import (
    DELIVER_WEBHOOK_ACTOR,
    EVENTS_QUEUE,
    JOBS_QUEUE,
    MAIL_QUEUE,
    PROCESS_EVENT_ACTOR,
    RUN_JOB_ACTOR,
    SEND_MAIL_ACTOR,
    WEBHOOKS_QUEUE,
    send_google_event,
    send_job,
    send_mail,
    send_webhook,
)
from bss.crypto import vault_from_settings
from bss.events import EventProcessor
from bss.gateway import pacer_factory, token_cache_from_settings
from bss.instances import token_refresh_recorder
from bss.jobs import JobRunner
from bss.notify import deliver, deliver_mail
from bss.settings import get_settings
from workers.broker import broker  # sets the broker before the actors below are declared

WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"


@functools.cache
def _runner() -> JobRunner:
    settings = get_settings()
    vault = vault_from_settings(settings)
    return JobRunner(
        settings=settings,
        vault=vault,
        resend=lambda job_id, delay_ms: send_job(broker, job_id, delay_ms=delay_ms),
        notify=lambda delivery_id: send_webhook(broker, delivery_id),
        # Each refresh is recorded on the instance, for the health the portal shows.
        token_cache=token_cache_from_settings(
            settings, vault, on_refresh=token_refresh_recorder(settings.database_url)
        ),
        # Every Google call waits its turn in its Cloud project's quota, shared through Redis.
        pacer_factory=pacer_factory(settings, vault),
    )


@dramatiq.actor(
    actor_name=RUN_JOB_ACTOR,
    queue_name=JOBS_QUEUE,
    # Retries and backoff are the job engine's (recorded on the job as `retrying` with the next
    # time, and sent as delayed messages), not the broker's.
    max_retries=0,
    time_limit=get_settings().job_time_limit_seconds * 1000,
)
def run_job(job_id: str) -> None:
    """Run one provisioning job by id."""
    _runner().run(job_id, worker=f"{WORKER_NAME}:{threading.current_thread().name}")


@dramatiq.actor(
    actor_name=DELIVER_WEBHOOK_ACTOR,
    queue_name=WEBHOOKS_QUEUE,
    # bss schedules the next attempt itself (with backoff and jitter) and records each one.
    max_retries=0,
    time_limit=int(get_settings().webhook_timeout_seconds * 3 * 1000),
)
def deliver_webhook(delivery_id: str) -> None:
    """Make one delivery attempt of a webhook event by id."""
    settings = get_settings()
    deliver(
        settings,
        _runner().vault,
        delivery_id,
        resend=lambda d, delay_ms: send_webhook(broker, d, delay_ms=delay_ms),
    )


@functools.cache
def _event_processor() -> EventProcessor:
    runner = _runner()
    return EventProcessor(
        settings=runner.settings,
        vault=runner.vault,
        notify=lambda delivery_id: send_webhook(broker, delivery_id),
        resend=lambda event_id, delay_ms: send_google_event(broker, event_id, delay_ms=delay_ms),
        token_cache=runner.token_cache,
        pacer_factory=runner.pacer_factory,
    )


@dramatiq.actor(
    actor_name=PROCESS_EVENT_ACTOR,
    queue_name=EVENTS_QUEUE,
    # An event that could not be processed stays `received`; the scheduler sends it again.
    max_retries=0,
    time_limit=get_settings().job_time_limit_seconds * 1000,
)
def process_google_event(event_id: int) -> None:
    """Process one stored Google notification by id: mirror, drift, billing's webhooks."""
    _event_processor().process(event_id)


@dramatiq.actor(
    actor_name=SEND_MAIL_ACTOR,
    queue_name=MAIL_QUEUE,
    # bss schedules the next attempt itself (with backoff and jitter) and records each one.
    max_retries=0,
    # A few senders may be tried in turn, each a token refresh and an SMTP or HTTP exchange.
    time_limit=int(max(120.0, get_settings().google_http_timeout * 12) * 1000),
)
def send_mail_message(message_id: str) -> None:
    """Make one attempt at sending an e-mail by id."""
    deliver_mail(
        get_settings(),
        message_id,
        resend=lambda m, delay_ms: send_mail(broker, m, delay_ms=delay_ms),
    )
