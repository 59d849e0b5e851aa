"""Health, readiness and Prometheus metrics, read from a real database and a real Redis."""

from __future__ import annotations

import re
import time
import uuid

import pytest
import redis

from bss import jobs, monitoring
from bss.accounts import create_distributor
from bss.broker import make_broker, send_job
from bss.crypto import vault_from_settings
from bss.db import session_scope
from bss.instances import create_instance
from bss.settings import Settings
from web import create_app


@pytest.fixture
def ops_settings(settings: Settings, redis_url: str) -> Settings:
    # A Redis database of its own, so no running worker consumes what the test enqueues.
    url = re.sub(r"/\d+$", "/7", redis_url)
    redis.Redis.from_url(url).flushdb()
    return settings.model_copy(update={"redis_url": url})


def metric(body: str, name: str, **labels: str) -> float | None:
    for line in body.splitlines():
        named = line.startswith(name + "{") or line.startswith(name + " ")
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_healthz_and_readyz_answer_when_database_and_redis_are_up(ops_settings):
    client = create_app(ops_settings).test_client()
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_says_which_dependency_is_down(ops_settings):
    down = ops_settings.model_copy(update={"redis_url": "redis://127.0.0.1:9/0"})
    ready = create_app(down).test_client().get("/readyz")
    assert ready.status_code == 503
    assert ready.json["checks"]["database"] == "ok"
    assert ready.json["checks"]["redis"].startswith("error")


def test_metrics_show_jobs_by_state_and_the_queue_behind_them(ops_settings):
    # Given two accepted jobs whose messages wait in the queue
    with session_scope(ops_settings.database_url) as s:
        d = create_distributor(s, name=f"Metrics {uuid.uuid4().hex[:6]}")
        create_instance(
            s,
            vault=vault_from_settings(ops_settings),
            distributor=d,
            name="main",
            client_id="123456789012-abcdefghijklmnopqrstuvwxyz012345.apps.googleusercontent.com",
            client_secret="s",
        )
    broker = make_broker(ops_settings)
    params = {
        "domain": "m.example",
        "alternate_email": "a@b.example",
        "postal_address": {
            "contact_name": "A",
            "organization_name": "B",
            "postal_code": "1",
            "country_code": "US",
        },
    }
    client = create_app(ops_settings).test_client()
    before = (
        metric(client.get("/metrics").text, "bss_jobs", state="queued", operation="customer.create")
        or 0
    )
    for _ in range(2):
        with session_scope(ops_settings.database_url) as s:
            job, _ = jobs.submit_job(
                s, distributor=d, instance_name="main", operation="customer.create", params=params
            )
        send_job(broker, job.id)
    # When Prometheus scrapes
    body = client.get("/metrics").text
    # Then it sees them
    assert metric(body, "bss_jobs", state="queued", operation="customer.create") == before + 2
    assert metric(body, "bss_queue_messages", queue="jobs", kind="ready") == 2
    assert metric(body, "bss_queue_oldest_message_age_seconds", queue="jobs") >= 0
    assert metric(body, "bss_workers_alive") == 0


def test_a_worker_counts_as_alive_until_its_heartbeats_stop(ops_settings, monkeypatch):
    client = redis.Redis.from_url(ops_settings.redis_url)
    monitoring.record_heartbeat(client, "host:1", {"host": "host", "pid": 1, "threads": 4})
    assert [w["worker"] for w in monitoring.live_workers(client)] == ["host:1"]
    body = create_app(ops_settings).test_client().get("/metrics").text
    assert metric(body, "bss_workers_alive") == 1
    # When no heartbeat comes for longer than the timeout
    later = time.time() + monitoring.HEARTBEAT_TIMEOUT_S + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert monitoring.live_workers(client) == []
