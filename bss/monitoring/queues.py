"""What operators watch: queue depths from the broker, workers alive."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pika.exceptions
import redis

from bss.broker import broker_kind, broker_url, describe_broker
from bss.errors import BrokerUnavailable, ConfigurationError
from bss.settings import Settings

# A redis.Redis client. Its replies are typed differently from one redis-py release to the next
# (sync or awaitable), so they are taken as they come and checked where they are used.
RedisClient = Any

NAMESPACE = "dramatiq"
# Worker processes write a heartbeat every HEARTBEAT_INTERVAL_S; missing it for
# HEARTBEAT_TIMEOUT_S counts as dead. (Dramatiq's own heartbeats also count processes that only
# enqueue, such as the web app, so they cannot tell workers apart.)
HEARTBEAT_INTERVAL_S = 5
HEARTBEAT_TIMEOUT_S = 15
WORKERS_SEEN_KEY = "bss:workers:seen"
WORKERS_INFO_KEY = "bss:workers:info"

# redis-py types a sync client's replies as "Awaitable[T] | T" (and as str where this client,
# without decode_responses, returns bytes); hence the casts and arg-type ignores on them below.


@dataclass(frozen=True)
class QueueStats:
    """One Dramatiq queue as the broker holds it."""

    name: str
    ready: int
    delayed: int
    in_progress: int | None  # None: the broker does not tell (RabbitMQ over AMQP)
    dead: int
    oldest_age_seconds: float | None
    broker: str = "redis"  # or "rabbitmq", which tells neither in progress nor the oldest's age


def _oldest_age(client: RedisClient, queue: str, now_ms: float) -> float | None:
    first = client.lindex(f"{NAMESPACE}:{queue}", 0)
    if first is None:
        return None
    raw = client.hget(f"{NAMESPACE}:{queue}.msgs", first)
    if raw is None:
        return None
    try:
        sent_ms = float(json.loads(raw)["message_timestamp"])
    except (ValueError, KeyError, TypeError):
        return None
    return max(0.0, (now_ms - sent_ms) / 1000)


def queue_stats(client: RedisClient, queue: str) -> QueueStats:
    """Ready, delayed, in progress, dead and the oldest waiting message's age for `queue`."""
    now_ms = time.time() * 1000
    in_progress = sum(
        int(client.scard(key))
        for key in client.scan_iter(match=f"{NAMESPACE}:__acks__.*.{queue}", count=500)
    )
    return QueueStats(
        name=queue,
        ready=int(client.llen(f"{NAMESPACE}:{queue}")),
        # Dramatiq keeps delayed messages (retries with backoff) on a queue of their own.
        delayed=int(client.llen(f"{NAMESPACE}:{queue}.DQ")),
        in_progress=in_progress,
        dead=int(client.zcard(f"{NAMESPACE}:{queue}.XQ")),
        oldest_age_seconds=_oldest_age(client, queue, now_ms),
    )


def broker_queue_stats(settings: Settings, queues: Sequence[str]) -> list[QueueStats]:
    """Each of `queues` as the broker holds it, on Redis or on RabbitMQ, over a short
    connection; BrokerUnavailable (its details: the failure's kind) when it cannot be read."""
    url = broker_url(settings)
    try:
        if broker_kind(settings) == "rabbitmq":
            from bss.monitoring.rabbitmq import rabbitmq_queue_stats

            return rabbitmq_queue_stats(url, queues)
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            return [queue_stats(client, q) for q in queues]
        finally:
            client.close()
    except ConfigurationError as exc:
        raise BrokerUnavailable(exc.message, details="configuration") from exc
    except (redis.RedisError, pika.exceptions.AMQPError, OSError, ValueError) as exc:
        # A malformed URL's ValueError may quote a piece of it: then only the kind is told.
        why = type(exc).__name__
        if not isinstance(exc, ValueError) and str(exc):
            why += f" {exc}"
        raise BrokerUnavailable(
            f"{describe_broker(settings)} cannot be read: {why}", details=type(exc).__name__
        ) from exc


def record_heartbeat(client: RedisClient, worker: str, info: dict[str, Any]) -> None:
    """Note that worker process `worker` is alive (its host, pid, threads, start time)."""
    now = time.time()
    pipe = client.pipeline()
    pipe.zadd(WORKERS_SEEN_KEY, {worker: now})
    pipe.hset(WORKERS_INFO_KEY, worker, json.dumps({**info, "last_seen": now}))
    # forget processes gone for a day
    seen = client.zrangebyscore(WORKERS_SEEN_KEY, 0, now - 86400)
    stale = [w.decode() if isinstance(w, bytes) else w for w in seen]
    if stale:
        pipe.zrem(WORKERS_SEEN_KEY, *stale)
        pipe.hdel(WORKERS_INFO_KEY, *stale)
    pipe.execute()


def forget_heartbeat(client: RedisClient, worker: str) -> None:
    """Worker process `worker` stopped cleanly (it put back what it held): not alive any more,
    at once rather than after HEARTBEAT_TIMEOUT_S of silence."""
    pipe = client.pipeline()
    pipe.zrem(WORKERS_SEEN_KEY, worker)
    pipe.hdel(WORKERS_INFO_KEY, worker)
    pipe.execute()


def live_workers(client: RedisClient) -> list[dict[str, Any]]:
    """Worker processes whose last heartbeat is recent, with what they said of themselves."""
    alive = client.zrangebyscore(WORKERS_SEEN_KEY, time.time() - HEARTBEAT_TIMEOUT_S, "+inf")
    if not alive:
        return []
    infos = client.hmget(WORKERS_INFO_KEY, alive)
    return [
        {"worker": w.decode() if isinstance(w, bytes) else w, **json.loads(i)}
        for w, i in zip(alive, infos, strict=True)
        if i is not None
    ]
