"""Queue depths on RabbitMQ, read the way AMQP allows: a passive declare of a queue answers how
many messages wait in it (ready, not yet handed to a worker), without touching them.

One short connection per reading, with tight timeouts, so that a dashboard refresh or a
Prometheus scrape never hangs on a broker that does not answer. What AMQP does not tell (the
messages workers hold unacknowledged, the oldest message's age) is left unknown (None), rather
than guessed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import pika
import pika.exceptions
from dramatiq.common import dq_name, xq_name
from pika.adapters.utils.connection_workflow import AMQPConnectorException

from bss.monitoring.queues import QueueStats

NOT_FOUND = 404
# Seconds. A broker that accepts the connection and then stops answering is noticed through
# heartbeats: pika gives up after the heartbeat plus 5 s.
CONNECT_TIMEOUT_S = 2
HEARTBEAT_S = 2


def rabbitmq_queue_stats(url: str, queues: Iterable[str]) -> list[QueueStats]:
    """Ready, delayed and dead messages of each of `queues` (Dramatiq's queue, its `.DQ` and its
    `.XQ`); a queue not declared yet counts as empty. Raises pika's errors (AMQPError, OSError)."""
    try:
        connection = pika.BlockingConnection([_parameters(u) for u in url.split(";") if u.strip()])
    except AMQPConnectorException as exc:  # a handshake timeout comes out of pika unwrapped
        raise pika.exceptions.AMQPConnectionError(exc) from exc
    try:
        reader = _Reader(connection)
        return [
            QueueStats(
                name=queue,
                ready=reader.count(queue),
                delayed=reader.count(dq_name(queue)),
                in_progress=None,
                dead=reader.count(xq_name(queue)),
                oldest_age_seconds=None,
                broker="rabbitmq",
            )
            for queue in queues
        ]
    finally:
        with contextlib.suppress(pika.exceptions.AMQPError, OSError):
            connection.close()


class _Reader:
    def __init__(self, connection: pika.BlockingConnection) -> None:
        self.connection = connection
        self.channel: Any = connection.channel()

    def count(self, queue: str) -> int:
        try:
            ok = self.channel.queue_declare(queue=queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != NOT_FOUND:
                raise
            self.channel = self.connection.channel()  # RabbitMQ closes the channel on a 404
            return 0
        return int(ok.method.message_count)


def _parameters(url: str) -> pika.URLParameters:
    params = pika.URLParameters(url.strip())
    params.connection_attempts = 1
    params.socket_timeout = CONNECT_TIMEOUT_S
    params.stack_timeout = CONNECT_TIMEOUT_S * 2
    params.blocked_connection_timeout = CONNECT_TIMEOUT_S
    params.heartbeat = HEARTBEAT_S
    return params
