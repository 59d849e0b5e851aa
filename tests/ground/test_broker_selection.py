"""Which broker the settings name, and how it is built: Redis by default, RabbitMQ for an amqp://
BSS_BROKER_URL, a clear refusal of anything else, and never a password in a message."""

from __future__ import annotations

from typing import Any

import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker

from bss.broker import (
    RABBITMQ_MAX_DELAY_MS,
    broker_kind,
    describe_broker,
    make_broker,
    masked_url,
    send_job,
    send_webhook,
)
from bss.errors import ConfigurationError
from bss.settings import Settings
from web import create_app

REDIS = "redis://127.0.0.1:6379/3"
RABBIT = "amqp://bss:s3cret-pw@mq.internal:5672/provisioning"


def settings(**env: str) -> Settings:
    return Settings(**{"REDIS_URL": REDIS, "BSS_BROKER_URL": "", **env})


def test_without_a_broker_url_the_broker_is_the_redis_of_redis_url():
    broker = make_broker(settings())
    assert isinstance(broker, RedisBroker)
    assert broker_kind(settings()) == "redis"
    assert describe_broker(settings()) == f"Redis at {REDIS}"


def test_an_amqp_url_makes_a_rabbitmq_broker_with_confirms_and_short_timeouts():
    broker = make_broker(settings(BSS_BROKER_URL=RABBIT))
    assert isinstance(broker, RabbitmqBroker)
    assert broker.confirm_delivery  # an enqueue returns once RabbitMQ has the message
    [params] = broker.parameters if isinstance(broker.parameters, list) else [broker.parameters]
    assert (params.host, params.port, params.virtual_host) == ("mq.internal", 5672, "provisioning")
    assert params.credentials.password == "s3cret-pw"
    assert (params.socket_timeout, params.blocked_connection_timeout) == (5, 5)


def test_the_urls_own_timeouts_win_and_several_nodes_are_kept():
    url = f"{RABBIT}?socket_timeout=30;amqps://bss:other-pw@mq2.internal:5671/provisioning"
    broker = make_broker(settings(BSS_BROKER_URL=url))
    first, second = broker.parameters
    assert first.socket_timeout == 30 and second.socket_timeout == 5
    assert second.host == "mq2.internal" and second.ssl_options is not None
    assert describe_broker(settings(BSS_BROKER_URL=url)) == (
        "RabbitMQ at amqp://bss:***@mq.internal:5672/provisioning?socket_timeout=30;"
        "amqps://bss:***@mq2.internal:5671/provisioning"
    )


def test_a_redis_broker_url_is_a_redis_of_its_own():
    broker = make_broker(settings(BSS_BROKER_URL="redis://queues.internal:6379/0"))
    assert isinstance(broker, RedisBroker)
    kwargs = broker.client.connection_pool.connection_kwargs
    assert kwargs["host"] == "queues.internal"


@pytest.mark.parametrize(
    "url",
    [
        "kafka://bss:s3cret-pw@kafka.internal:9092",
        "bss:s3cret-pw@mq.internal:5672",  # the scheme forgotten
        "http://bss:s3cret-pw@mq.internal:15672/api",  # the management port, not AMQP
    ],
)
def test_an_unknown_scheme_is_refused_clearly_without_the_password(url):
    with pytest.raises(ConfigurationError) as refused:
        make_broker(settings(BSS_BROKER_URL=url))
    message = refused.value.message
    assert "BSS_BROKER_URL" in message and "amqp://user:password@host:5672/vhost" in message
    assert "s3cret-pw" not in message and "bss:***@" in message


def test_the_web_app_refuses_to_start_on_an_unknown_broker():
    with pytest.raises(ConfigurationError, match="BSS_BROKER_URL"):
        create_app(settings(BSS_BROKER_URL="kafka://bss:s3cret-pw@kafka.internal:9092"))


def test_without_any_url_redis_url_is_asked_for():
    with pytest.raises(ConfigurationError, match="REDIS_URL is not set"):
        make_broker(Settings(REDIS_URL="", BSS_BROKER_URL=""))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/%2F", "amqp://guest:***@127.0.0.1:5672/%2F"),
        ("amqp://u:p:q@h/v", "amqp://u:***@h/v"),  # a colon in the password
        ("amqp://u:p@ss@h", "amqp://u:***@h"),  # an at sign in the password
        ("amqp://u:pa/ss@h", "amqp://u:***@h"),  # a slash in the password
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("amqp://u@h", "amqp://u@h"),
        ("amqp://h/vhost", "amqp://h/vhost"),
    ],
)
def test_masked_urls_keep_everything_but_the_password(url, shown):
    assert masked_url(url) == shown


class Recorded(RabbitmqBroker):
    """A RabbitMQ broker that records what it would publish (no server at this edge)."""

    def __init__(self) -> None:
        super().__init__(url=RABBIT)
        self.sent: list[tuple[str, int | None]] = []

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        self.sent.append((message.args[0], delay))
        return message


def test_a_delay_longer_than_rabbitmq_holds_a_message_is_left_to_the_sweep():
    # Given a RabbitMQ broker (a worker holds a delayed message unacked until it is due)
    broker = Recorded()
    # When a retry or a webhook is due soon, and another one later than RabbitMQ would wait
    send_job(broker, "job_soon", delay_ms=5_000)
    send_job(broker, "job_late", delay_ms=RABBITMQ_MAX_DELAY_MS + 1)
    send_webhook(broker, "wh_late", delay_ms=3_600_000)
    send_job(broker, "job_now")
    # Then the near ones are sent; the late ones wait in the database for the sweep
    assert broker.sent == [("job_soon", 5_000), ("job_now", None)]


def test_a_job_due_now_goes_straight_to_its_queue_not_through_the_delay_queue():
    # Dramatiq sends any delay, even 0, through the delay queue: a second enqueue, fetch and
    # acknowledgement on the broker, and a worker's consumer to pass it on.
    broker = Recorded()
    send_job(broker, "job_now", delay_ms=0)
    send_job(broker, "job_later", delay_ms=250)
    assert broker.sent == [("job_now", None), ("job_later", 250)]
