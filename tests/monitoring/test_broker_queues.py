"""Queue depths on RabbitMQ as operators and Prometheus see them, and a broker that does not
answer: shown as such, never a server error, never with its password."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import dramatiq
import pytest

from bss.broker import make_broker
from bss.errors import BrokerUnavailable
from bss.monitoring import broker_queue_stats
from bss.settings import Settings
from bss.tools import free_port
from tests.support.dashboard import signed_in
from web import create_app

LOCAL_RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/%2F"


@pytest.fixture
def rabbitmq_url() -> str:
    """BSS_TEST_BROKER_URL when it is RabbitMQ, else this machine's; skipped when it does not
    answer, unless BSS_TEST_BROKER_URL asked for it (then a failure)."""
    asked = os.environ.get("BSS_TEST_BROKER_URL", "")
    url = asked if asked.startswith("amqp") else LOCAL_RABBITMQ
    parts = urlsplit(url)
    with socket.socket() as probe:
        probe.settimeout(1)
        answers = probe.connect_ex((parts.hostname or "127.0.0.1", parts.port or 5672)) == 0
    if not answers:
        if asked:
            pytest.fail(f"BSS_TEST_BROKER_URL does not answer on {parts.hostname}:{parts.port}")
        pytest.skip("no RabbitMQ on 127.0.0.1:5672")
    return url


def test_rabbitmq_queues_are_counted_by_a_passive_declare(rabbitmq_url, redis_url):
    # Given a queue of this test's own holding two messages to run now and one for later
    settings = Settings(BSS_BROKER_URL=rabbitmq_url, REDIS_URL=redis_url)
    queue, never_used = f"bss-test-{uuid.uuid4().hex[:8]}", f"bss-none-{uuid.uuid4().hex[:8]}"
    broker = make_broker(settings)
    try:
        for delay in (None, None, 60_000):
            message = dramatiq.Message(
                queue_name=queue, actor_name="run_job", args=("job_x",), kwargs={}, options={}
            )
            broker.enqueue(message, delay=delay)
        # When the depths are read
        stats, empty = broker_queue_stats(settings, [queue, never_used])
    finally:
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            broker.channel.queue_delete(name)
        broker.close()
    # Then what waits is counted, what AMQP does not tell is unknown, a missing queue is empty
    assert (stats.ready, stats.delayed, stats.dead) == (2, 1, 0)
    assert (stats.in_progress, stats.oldest_age_seconds, stats.broker) == (None, None, "rabbitmq")
    assert (empty.name, empty.ready, empty.delayed, empty.dead) == (never_used, 0, 0, 0)


def test_the_overview_and_metrics_show_rabbitmqs_queues(rabbitmq_url, dashboard_settings, world):
    app = create_app(dashboard_settings.model_copy(update={"broker_url": rabbitmq_url}))
    page = signed_in(app, world.users["operator"]).get("/dashboard/")
    assert page.status_code == 200
    assert 'id="queue-jobs"' in page.text and 'id="queue-webhooks"' in page.text
    assert 'id="queues-rabbitmq"' in page.text  # says what RabbitMQ does not tell
    in_progress = re.search(r'id="queue-jobs".*?class="num in-progress">([^<]*)<', page.text, re.S)
    assert in_progress and in_progress.group(1) == "—"
    body = app.test_client().get("/metrics").text
    for kind in ("ready", "delayed", "dead"):
        assert f'bss_queue_messages{{kind="{kind}",queue="jobs"}}' in body
    assert 'kind="in_progress"' not in body and "bss_queue_oldest_message_age_seconds{" not in body
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 200 and ready.json["checks"]["broker"] == "ok"


def test_a_rabbitmq_that_does_not_answer_is_shown_as_such_without_its_password(
    dashboard_settings, world
):
    # Given a web app whose RabbitMQ does not answer (nothing listens there)
    url = f"amqp://bss:s3cret-pw@127.0.0.1:{free_port()}/provisioning"
    app = create_app(dashboard_settings.model_copy(update={"broker_url": url}))
    # Then the overview says the broker cannot be read, and still shows the rest
    page = signed_in(app, world.users["operator"]).get("/dashboard/")
    assert page.status_code == 200
    assert "The broker cannot be read (AMQPConnectionError)" in page.text
    assert 'id="charts"' in page.text
    # And Prometheus gets the jobs without the queues; readiness names the broker
    metrics = app.test_client().get("/metrics")
    assert metrics.status_code == 200
    assert "# TYPE bss_jobs gauge" in metrics.text
    assert "bss_queue_messages" not in metrics.text
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503
    assert ready.json["checks"]["broker"] == "error: AMQPConnectionError"
    # And no answer, nor the error the core raises, carries the password
    with pytest.raises(BrokerUnavailable) as unavailable:
        broker_queue_stats(app.config["BSS_SETTINGS"], ["jobs"])
    assert "bss:***@127.0.0.1" in unavailable.value.message
    for text in (page.text, metrics.text, ready.text, unavailable.value.message):
        assert "s3cret-pw" not in text


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word (a hung broker)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in [*held, server]:
        conn.close()


def test_a_rabbitmq_that_accepts_and_never_answers_is_given_up_on_quickly(
    silent_server, dashboard_settings, world
):
    url = f"amqp://bss:s3cret-pw@127.0.0.1:{silent_server}/provisioning"
    settings = dashboard_settings.model_copy(update={"broker_url": url})
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as unavailable:
        broker_queue_stats(settings, ["jobs"])
    assert time.monotonic() - started < 8
    assert unavailable.value.details == "AMQPConnectionError"
    page = signed_in(create_app(settings), world.users["operator"]).get("/dashboard/")
    assert page.status_code == 200
    assert "The broker cannot be read (AMQPConnectionError)" in page.text
