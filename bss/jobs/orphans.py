"""Messages a dead worker had taken but not started: back on their queue within seconds.

A Dramatiq worker on Redis takes up to twice its threads' worth of messages ahead (prefetch).
When it dies, those messages stay "in progress" under its name until Dramatiq's own maintenance
sees it silent for a minute, and that maintenance runs at random, on about 0.1 % of commands.
Their jobs are still `queued` in the database, where the sweep cannot tell them from jobs whose
message is simply far back in a long queue. The workers' own heartbeats (bss.monitoring, sent
by a thread every few seconds, busy or not) can: when one stops, the scheduler marks that
worker's Dramatiq identity silent and runs Dramatiq's maintenance on each queue, which puts its
messages back. A worker that is alive never loses its messages this way, and one wrongly taken
for dead would only see its jobs delivered twice, which the lease makes harmless.

On RabbitMQ nothing is needed: the broker redelivers a dead consumer's messages at once.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker

from bss.broker import EVENTS_QUEUE, JOBS_QUEUE, MAIL_QUEUE, WEBHOOKS_QUEUE
from bss.monitoring import HEARTBEAT_TIMEOUT_S, WORKERS_INFO_KEY, WORKERS_SEEN_KEY

log = logging.getLogger(__name__)

NAMESPACE = "dramatiq"
HEARTBEATS_KEY = f"{NAMESPACE}:__heartbeats__"
# Every queue a worker takes messages from: each one and its delay queue.
QUEUES = tuple(
    name
    for queue in (JOBS_QUEUE, WEBHOOKS_QUEUE, EVENTS_QUEUE, MAIL_QUEUE)
    for name in (queue, f"{queue}.DQ")
)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def dead_broker_ids(client: Any, *, now: float | None = None) -> list[str]:
    """The Dramatiq identities of worker processes whose heartbeat stopped (within a day)."""
    now = time.time() if now is None else now
    silent = client.zrangebyscore(WORKERS_SEEN_KEY, 0, now - HEARTBEAT_TIMEOUT_S)
    if not silent:
        return []
    ids = []
    for raw in client.hmget(WORKERS_INFO_KEY, silent):
        try:
            broker_id = json.loads(raw or "{}").get("broker_id")
        except ValueError:
            continue
        if broker_id:
            ids.append(_text(broker_id))
    return ids


def _client(url: str) -> Any:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def requeue_from_dead_workers(redis_url: str, broker_url: str | None = None) -> list[str]:
    """Put back on their queues the messages of worker processes that stopped beating; the
    Dramatiq identities of those workers. The heartbeats are on `redis_url` (REDIS_URL), the
    messages on `broker_url` (the broker's Redis, the same one unless BSS_BROKER_URL says)."""
    broker_url = broker_url or redis_url
    beats = _client(redis_url)
    messages = beats if broker_url == redis_url else _client(broker_url)
    try:
        dead = [b for b in dead_broker_ids(beats) if messages.zscore(HEARTBEATS_KEY, b) is not None]
        if not dead:
            return []
        # Silent since the epoch, as far as Dramatiq's maintenance is concerned...
        messages.zadd(HEARTBEATS_KEY, dict.fromkeys(dead, 0), xx=True)
    finally:
        beats.close()
        messages.close()
    # ...which runs at every command of this broker, here one that changes nothing.
    maintenance = RedisBroker(url=broker_url, maintenance_chance=MAINTENANCE_SCALE)
    try:
        for queue in QUEUES:
            maintenance.do_qsize(queue)
    finally:
        maintenance.close()
    log.warning("messages of %d dead worker process(es) put back on their queues", len(dead))
    return dead
