"""The message broker: how a job id travels from whoever accepted it to a worker."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bss.errors import ConfigurationError
from bss.settings import Settings

JOBS_QUEUE = "jobs"
RUN_JOB_ACTOR = "run_job"
WEBHOOKS_QUEUE = "webhooks"
DELIVER_WEBHOOK_ACTOR = "deliver_webhook"


def make_broker(settings: Settings) -> dramatiq.Broker:
    """A Redis broker for REDIS_URL; nothing connects until the first message."""
    if not settings.redis_url:
        raise ConfigurationError(
            "REDIS_URL is not set: point it at a Redis server (`bss demo` starts one for you)."
        )
    return RedisBroker(url=settings.redis_url)


def send_job(broker: dramatiq.Broker, job_id: str, *, delay_ms: int | None = None) -> None:
    """Ask a worker to run job `job_id` (now, or after `delay_ms`)."""
    message: dramatiq.Message = dramatiq.Message(
        queue_name=JOBS_QUEUE, actor_name=RUN_JOB_ACTOR, args=(job_id,), kwargs={}, options={}
    )
    broker.enqueue(message, delay=delay_ms)


def send_webhook(broker: dramatiq.Broker, delivery_id: str, *, delay_ms: int | None = None) -> None:
    """Ask a worker to deliver webhook delivery `delivery_id` (now, or after `delay_ms`)."""
    message: dramatiq.Message = dramatiq.Message(
        queue_name=WEBHOOKS_QUEUE,
        actor_name=DELIVER_WEBHOOK_ACTOR,
        args=(delivery_id,),
        kwargs={},
        options={},
    )
    broker.enqueue(message, delay=delay_ms)
