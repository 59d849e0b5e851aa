"""The message broker: how a job id travels from whoever accepted it to a worker.

Redis (REDIS_URL) by default; RabbitMQ when BSS_BROKER_URL is an amqp:// URL. Either way the
database is the record and the broker only delivers: a message lost or refused is sent again by
the sweep.
"""

from __future__ import annotations

import contextlib
import logging
import time
import weakref
from collections.abc import Iterable
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dramatiq
import redis
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import compute_backoff, current_millis
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import Middleware, Retries, ShutdownNotifications, TimeLimit

from bss.errors import ConfigurationError
from bss.settings import Settings

log = logging.getLogger(__name__)

JOBS_QUEUE = "jobs"
RUN_JOB_ACTOR = "run_job"
WEBHOOKS_QUEUE = "webhooks"
DELIVER_WEBHOOK_ACTOR = "deliver_webhook"
EVENTS_QUEUE = "events"
PROCESS_EVENT_ACTOR = "process_google_event"
MAIL_QUEUE = "mail"
SEND_MAIL_ACTOR = "send_mail"

BrokerKind = Literal["redis", "rabbitmq"]
SCHEMES: dict[str, BrokerKind] = {
    "redis": "redis",
    "rediss": "redis",
    "unix": "redis",
    "amqp": "rabbitmq",
    "amqps": "rabbitmq",
}
# pika waits 15 s for a host that does not answer, and for ever while RabbitMQ blocks publishers
# (a memory or disk alarm); a web request that enqueues must not. A URL's own query wins.
RABBITMQ_TIMEOUTS = {
    "socket_timeout": "5",
    "stack_timeout": "5",  # the whole connection: TCP, TLS and the AMQP handshake
    "blocked_connection_timeout": "5",  # Dramatiq tries 6 times: up to 30 s while blocked
}
# A worker holds a delayed message unacknowledged until it is due, and RabbitMQ closes a channel
# holding one longer than its consumer_timeout (30 min by default). A longer delay is not sent:
# the job's (or delivery's) next attempt time is in the database, and the sweep sends it then.
RABBITMQ_MAX_DELAY_MS = 15 * 60 * 1000


def masked_url(url: str) -> str:
    """`url` with its password replaced by ***, for messages and logs (each URL of a list of
    RabbitMQ nodes separated by `;`)."""
    return ";".join(_masked(part) for part in url.split(";"))


def _masked(url: str) -> str:
    at = url.rfind("@")
    if at < 0:
        return url
    start = url.find("://")
    start = start + 3 if 0 <= start < at else 0
    userinfo = url[start:at]
    user, colon, _password = userinfo.partition(":")
    return url[:start] + (f"{user}:***" if colon else user) + url[at:]


def broker_kind(settings: Settings) -> BrokerKind:
    """Which broker the settings name: RabbitMQ for an amqp:// BSS_BROKER_URL, else Redis."""
    url = settings.broker_url.strip()
    if not url:
        return "redis"
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"BSS_BROKER_URL {masked_url(url)!r} is neither RabbitMQ nor Redis: use "
            "amqp://user:password@host:5672/vhost (or amqps://), a redis:// URL, or leave it "
            "empty to use the Redis of REDIS_URL."
        )
    return SCHEMES[scheme]


def broker_url(settings: Settings) -> str:
    """The URL of the broker: BSS_BROKER_URL, or REDIS_URL when that is empty."""
    return settings.broker_url.strip() or settings.redis_url


def describe_broker(settings: Settings) -> str:
    """The broker in words, its password masked: `RabbitMQ at amqp://bss:***@mq:5672/bss`."""
    name = "RabbitMQ" if broker_kind(settings) == "rabbitmq" else "Redis"
    return f"{name} at {masked_url(broker_url(settings))}"


def _middleware() -> list[Middleware]:
    """Dramatiq's default middleware, less what no actor here uses (age limits, callbacks,
    pipelines: each is called before and after every message). An actor declared with one of
    their options fails at import, saying so."""
    return [TimeLimit(), ShutdownNotifications(), Retries()]


def make_broker(settings: Settings) -> dramatiq.Broker:
    """The broker the settings name; nothing connects until the first message."""
    if broker_kind(settings) == "rabbitmq":
        urls = [_with_timeouts(u) for u in broker_url(settings).split(";") if u.strip()]
        # Publisher confirms: an enqueue returns once RabbitMQ has the message, as an LPUSH
        # does on Redis, so a connection the server dropped while idle cannot swallow it.
        broker = RabbitmqBroker(url=";".join(urls), confirm_delivery=True, middleware=_middleware())
        # A broker nobody holds any more closes its connections (redis-py's do so by themselves)
        weakref.finalize(broker, _close_all, broker.channels, broker.connections)
        return broker
    if not settings.redis_url and not settings.broker_url:
        raise ConfigurationError(
            "REDIS_URL is not set: point it at a Redis server (`bss demo` starts one for you)."
        )
    return WakingRedisBroker(url=broker_url(settings), middleware=_middleware())


# A message sent (now, or with a delay to the queue's delay queue) also leaves a token here,
# which one idle consumer of that queue waits for.
WAKE_KEY = "bss:wake:{queue}"
# Tokens nobody took (every consumer was busy) are capped: each costs an idle consumer one look.
WAKE_TOKENS_KEPT = 8
# An idle consumer looks at its queue at least this often, token or not: messages nobody
# announces (put back from a dead or stopping worker) wait at most this long.
IDLE_LOOK_S = 1.0


class WakingRedisBroker(RedisBroker):
    """Dramatiq's Redis broker, whose idle consumers wait for a message to be announced rather
    than polling their queue. Dramatiq's consumer polls an empty queue at growing intervals (up
    to its idle timeout): a message sent to idle workers waited 20-100 ms for one to look, and
    each worker process's eight consumers (four queues and their delay queues) asked Redis
    about 70 times a second while idle. Here every message sent leaves a token that wakes one
    consumer with room, and an idle consumer looks on its own only every IDLE_LOOK_S.
    Messages, acks and everything else stay Dramatiq's; a lost token only costs the wait for
    the next look."""

    @property
    def consumer_class(self) -> type[_RedisConsumer]:
        return _WakingConsumer

    def do_enqueue(self, queue_name: str, message_id: str, encoded: bytes) -> None:
        """Dramatiq's enqueue and the wake token in one round trip (one pipeline), not two.
        `queue_name` is the delay queue's for a delayed message: its token wakes that queue's
        consumer. The arguments are those Dramatiq's RedisBroker gives its dispatch script."""
        dispatch = self.scripts["dispatch"]
        key = WAKE_KEY.format(queue=queue_name)
        args = [
            *("enqueue", current_millis(), queue_name, self.broker_id),
            *(self.heartbeat_timeout, self.dead_message_ttl),
            *(self._should_do_maintenance("enqueue"), self._max_unpack_size()),
            *(message_id, encoded),
        ]
        with self.client.pipeline(transaction=False) as pipe:
            pipe.evalsha(dispatch.sha, 1, self.namespace, *args)
            pipe.lpush(key, 1).ltrim(key, 0, WAKE_TOKENS_KEPT - 1)
            enqueued, *_ = pipe.execute(raise_on_error=False)
        if isinstance(enqueued, redis.exceptions.NoScriptError):
            # A server that does not have the script yet (new, or flushed): Dramatiq's own call
            # loads it and runs it; nothing was enqueued above.
            dispatch(keys=[self.namespace], args=args)
        elif isinstance(enqueued, Exception):
            raise enqueued


class _WakingConsumer(_RedisConsumer):
    """Dramatiq's consumer, but once a look finds the queue emptied, it waits for a token
    (BLPOP, at most IDLE_LOOK_S) before it looks again, instead of looking and sleeping."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.drained = False  # the last look took fewer messages than it had room for

    def __next__(self) -> Any:
        if self.message_cache:
            return super().__next__()
        try:
            room = self.prefetch - self.outstanding_message_count
            if room <= 0:  # every thread busy: as Dramatiq does, it sleeps a little
                self.misses, backoff_ms = compute_backoff(self.misses, max_backoff=self.timeout)
                time.sleep(backoff_ms / 1000)
                return None
            if self.drained:  # nothing more was there: wait until something is announced
                key = WAKE_KEY.format(queue=self.queue_name)
                self.broker.client.blpop([key], timeout=IDLE_LOOK_S)
            self.message_cache = self.broker.do_fetch(self.queue_name, room)
            self.drained = len(self.message_cache) < room
            return super().__next__() if self.message_cache else None
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None


def _close_all(*groups: Iterable[Any]) -> None:
    for group in groups:
        for channel_or_connection in list(group):
            with contextlib.suppress(Exception):  # already closed, or the server is gone
                channel_or_connection.close()


def _with_timeouts(url: str) -> str:
    parts = urlsplit(url.strip())
    query = parse_qsl(parts.query)
    given = {name for name, _ in query}
    query += [(k, v) for k, v in RABBITMQ_TIMEOUTS.items() if k not in given]
    return urlunsplit(parts._replace(query=urlencode(query)))


def send_job(broker: dramatiq.Broker, job_id: str, *, delay_ms: int | None = None) -> None:
    """Ask a worker to run job `job_id` (now, or after `delay_ms`)."""
    message: dramatiq.Message = dramatiq.Message(
        queue_name=JOBS_QUEUE, actor_name=RUN_JOB_ACTOR, args=(job_id,), kwargs={}, options={}
    )
    _enqueue(broker, message, delay_ms)


def send_webhook(broker: dramatiq.Broker, delivery_id: str, *, delay_ms: int | None = None) -> None:
    """Ask a worker to deliver webhook delivery `delivery_id` (now, or after `delay_ms`)."""
    message: dramatiq.Message = dramatiq.Message(
        queue_name=WEBHOOKS_QUEUE,
        actor_name=DELIVER_WEBHOOK_ACTOR,
        args=(delivery_id,),
        kwargs={},
        options={},
    )
    _enqueue(broker, message, delay_ms)


def send_google_event(
    broker: dramatiq.Broker, event_id: int, *, delay_ms: int | None = None
) -> None:
    """Ask a worker to process stored Google notification `event_id` (now, or after `delay_ms`)."""
    message: dramatiq.Message = dramatiq.Message(
        queue_name=EVENTS_QUEUE,
        actor_name=PROCESS_EVENT_ACTOR,
        args=(event_id,),
        kwargs={},
        options={},
    )
    _enqueue(broker, message, delay_ms)


def send_mail(broker: dramatiq.Broker, message_id: str, *, delay_ms: int | None = None) -> None:
    """Ask a worker to send e-mail `message_id` (now, or after `delay_ms`)."""
    message: dramatiq.Message = dramatiq.Message(
        queue_name=MAIL_QUEUE,
        actor_name=SEND_MAIL_ACTOR,
        args=(message_id,),
        kwargs={},
        options={},
    )
    _enqueue(broker, message, delay_ms)


def _enqueue(broker: dramatiq.Broker, message: dramatiq.Message, delay_ms: int | None) -> None:
    if delay_ms and delay_ms > RABBITMQ_MAX_DELAY_MS and isinstance(broker, RabbitmqBroker):
        log.info(
            "%s %s is due in %ds, longer than RabbitMQ holds a delayed message: the sweep "
            "sends it when it is due",
            message.actor_name,
            message.args[0],
            delay_ms // 1000,
        )
        return
    # A delay of 0 is "now": Dramatiq sends any delay, even 0, through the delay queue, a second
    # enqueue, fetch and ack on the broker for nothing.
    broker.enqueue(message, delay=delay_ms or None)
