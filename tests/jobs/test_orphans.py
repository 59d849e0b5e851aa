"""Messages a dead worker process had taken ahead go back on their queue; a live one's stay."""

from __future__ import annotations

import json
import time

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

from bss.broker import JOBS_QUEUE, RUN_JOB_ACTOR
from bss.jobs.orphans import requeue_from_dead_workers
from bss.monitoring import HEARTBEAT_TIMEOUT_S, WORKERS_INFO_KEY, WORKERS_SEEN_KEY
from bss.tools import free_port


def take_ahead(redis_url: str, name: str, client: redis.Redis, *, seen: float) -> RedisBroker:
    """A worker process `name` that took one message ahead and last beat at `seen`."""
    broker = RedisBroker(url=redis_url)
    broker.declare_queue(JOBS_QUEUE)
    message = dramatiq.Message(
        queue_name=JOBS_QUEUE, actor_name=RUN_JOB_ACTOR, args=(name,), kwargs={}, options={}
    )
    broker.enqueue(message)
    assert broker.do_fetch(JOBS_QUEUE, 1)  # taken ahead: "in progress" under its name
    client.zadd(WORKERS_SEEN_KEY, {name: seen})
    client.hset(WORKERS_INFO_KEY, name, json.dumps({"broker_id": broker.broker_id}))
    return broker


def test_a_dead_workers_messages_go_back_and_a_live_ones_stay(supervisor):
    redis_url = supervisor.start_redis(port=free_port())  # a Redis of its own: it reads queues
    client = redis.Redis.from_url(redis_url)
    now = time.time()
    dead = take_ahead(redis_url, "host:1", client, seen=now - HEARTBEAT_TIMEOUT_S - 1)
    alive = take_ahead(redis_url, "host:2", client, seen=now)
    assert client.llen(f"dramatiq:{JOBS_QUEUE}") == 0

    assert requeue_from_dead_workers(redis_url) == [dead.broker_id]

    # The dead one's message is ready for another worker; the live one keeps its own
    queued = [
        client.hget(f"dramatiq:{JOBS_QUEUE}.msgs", i)
        for i in client.lrange(f"dramatiq:{JOBS_QUEUE}", 0, -1)
    ]
    assert [json.loads(m)["args"] for m in queued] == [["host:1"]]
    assert client.scard(f"dramatiq:__acks__.{alive.broker_id}.{JOBS_QUEUE}") == 1
    # And once put back, nothing more happens at the next sweeps
    assert requeue_from_dead_workers(redis_url) == []
    assert client.llen(f"dramatiq:{JOBS_QUEUE}") == 1
    for broker in (dead, alive):
        broker.close()
    client.close()
