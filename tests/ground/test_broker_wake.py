"""On Redis, a message sent now wakes an idle worker's consumer at once, rather than waiting
for its next poll (up to its idle timeout). A real redis-server; Dramatiq's own consumer."""

from __future__ import annotations

import threading
import time
import uuid

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import dq_name

from bss.broker import IDLE_LOOK_S, WAKE_KEY, WAKE_TOKENS_KEPT, WakingRedisBroker


def message(queue: str, n: int = 0) -> dramatiq.Message:
    return dramatiq.Message(queue_name=queue, actor_name="a", args=(n,), kwargs={}, options={})


def test_an_idle_consumer_is_woken_by_a_message_sent_now(redis_url):
    broker = WakingRedisBroker(url=redis_url)
    queue = f"wake-{uuid.uuid4().hex[:8]}"
    broker.declare_queue(queue)
    # Given a consumer with room that has found its queue empty for a while: its next look
    # is 2.5 to 5 seconds away
    consumer = broker.consume(queue, prefetch=2, timeout=5000)
    consumer.misses = 20
    got: list[object] = []
    took: list[float] = []

    def consume() -> None:
        started = time.monotonic()
        while not got and time.monotonic() - started < 10:
            found = next(consumer)
            if found is not None:
                got.append(found)
        took.append(time.monotonic() - started)

    waiting = threading.Thread(target=consume)
    waiting.start()
    time.sleep(0.3)  # it waits
    # When a message is sent now
    broker.enqueue(message(queue, 7))
    waiting.join(15)
    # Then the consumer has it long before its next look would have found it
    assert got and got[0].args == (7,)
    assert took[0] < 2.0, took
    consumer.close()


def test_a_delayed_message_wakes_its_delay_queue_and_unclaimed_wakes_are_capped(redis_url):
    broker = WakingRedisBroker(url=redis_url)
    queue = f"wake-{uuid.uuid4().hex[:8]}"
    broker.declare_queue(queue)
    client = redis.Redis.from_url(redis_url)
    key = WAKE_KEY.format(queue=queue)
    broker.enqueue(message(queue), delay=60_000)
    assert client.llen(key) == 0
    assert client.llen(WAKE_KEY.format(queue=dq_name(queue))) == 1
    # While every worker is busy, messages keep coming: the tokens nobody took stay few, each
    # costing an idle consumer one look later
    for n in range(3 * WAKE_TOKENS_KEPT):
        broker.enqueue(message(queue, n))
    assert client.llen(key) == WAKE_TOKENS_KEPT
    client.delete(key, WAKE_KEY.format(queue=dq_name(queue)))


class CountingBroker(WakingRedisBroker):
    """The broker, counting the consumers' looks at their queue."""

    looks = 0

    def do_fetch(self, *args):  # type: ignore[no-untyped-def]
        CountingBroker.looks += 1
        return super().__getattr__("do_fetch")(*args)  # Dramatiq makes its do_ commands there


def consume_for(consumer, seconds: float, *, enough: int | None = None) -> list[object]:
    """What the consumer gives within `seconds` (or until it gave `enough`), acknowledged."""
    got: list[object] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (enough is None or len(got) < enough):
        found = next(consumer)
        if found is not None:
            got.append(found)
            consumer.ack(found)
    return got


def test_an_idle_consumer_looks_about_once_a_second_and_still_finds_an_unannounced_message(
    redis_url,
):
    broker = CountingBroker(url=redis_url)
    queue = f"wake-{uuid.uuid4().hex[:8]}"
    broker.declare_queue(queue)
    # Given a consumer whose queue is empty, with Dramatiq's 100 ms idle timeout
    consumer = broker.consume(queue, prefetch=2, timeout=100)
    CountingBroker.looks = 0
    assert consume_for(consumer, 2.5) == []
    # Then it looked at the queue about once a second, not ten times
    assert CountingBroker.looks <= 2.5 / IDLE_LOOK_S + 2, CountingBroker.looks
    # And a message put on the queue without a token (as Dramatiq puts back a dead worker's)
    # is still found at one of its next looks (a few seconds allowed for a loaded machine)
    RedisBroker(url=redis_url).enqueue(message(queue, 9))
    got = consume_for(consumer, 4 * IDLE_LOOK_S + 1, enough=1)
    assert [m.args for m in got] == [(9,)]  # type: ignore[attr-defined]
    consumer.close()


def test_a_message_sent_to_a_server_without_the_script_is_enqueued_once(redis_url):
    # The message and its token go in one round trip that assumes Dramatiq's script is loaded
    broker = WakingRedisBroker(url=redis_url)
    queue = f"wake-{uuid.uuid4().hex[:8]}"
    broker.declare_queue(queue)
    client = redis.Redis.from_url(redis_url)
    broker.enqueue(message(queue, 1))
    # Given a server that lost its scripts (restarted, or SCRIPT FLUSH)
    client.script_flush()
    # When two more messages are sent
    broker.enqueue(message(queue, 2))
    broker.enqueue(message(queue, 3))
    # Then each is on the queue once, in order, each with its token (capped)
    consumer = broker.consume(queue, prefetch=10, timeout=100)
    got = consume_for(consumer, 5, enough=3)
    assert [m.args for m in got] == [(1,), (2,), (3,)]  # type: ignore[attr-defined]
    assert consume_for(consumer, 0.5) == []
    consumer.close()
    client.delete(WAKE_KEY.format(queue=queue))
