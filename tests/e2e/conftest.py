"""The whole system, really started: redis-server, the sandbox, gunicorn, a dramatiq worker.

Set BSS_TEST_BROKER_URL (amqp://guest:guest@127.0.0.1:5672/%2F) to run them on RabbitMQ: the web
app and the workers use it as their broker (Redis stays for the rest), its queues emptied first.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests
from pipeline import purge_queues, start_app

from bss.settings import Settings
from bss.tools import Supervisor, free_port, sandbox_tenant, wait_http

FINAL = {"succeeded", "failed", "cancelled"}


@dataclass
class Stack:
    web: str
    sandbox: str
    settings: Settings
    worker_metrics: str


@dataclass
class Tenant:
    api_key: str
    instance: str
    reseller: str
    admin: str
    client_id: str
    client_secret: str
    stack: Stack

    def submit(self, operation: str, params: dict[str, Any], **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        if key := kw.pop("idempotency_key", None):
            headers["Idempotency-Key"] = key
        body = {
            "instance": kw.pop("instance", self.instance),
            "operation": operation,
            "params": params,
            **kw,
        }
        return requests.post(
            f"{self.stack.web}/api/v1/jobs", json=body, headers=headers, timeout=10
        )

    def job(self, job_id: str) -> dict[str, Any]:
        resp = requests.get(
            f"{self.stack.web}/api/v1/jobs/{job_id}",
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=10,
        )
        resp.raise_for_status()
        return resp.json()

    def wait(self, job_id: str, states: set[str] = FINAL, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["state"] in states or time.monotonic() > deadline:
                return job
            time.sleep(0.2)


@pytest.fixture(scope="session")
def broker_url(redis_url: str) -> Iterator[str]:
    """BSS_TEST_BROKER_URL, its queues emptied of an earlier run's messages; under pytest-xdist a
    virtual host of this process's own on it, so that parallel sessions never take each other's
    messages. Empty: the broker is the Redis of REDIS_URL."""
    url = os.environ.get("BSS_TEST_BROKER_URL", "")
    if url and os.environ.get("PYTEST_XDIST_WORKER"):
        with own_virtual_host(url) as own:
            yield own
        return
    if url:
        purge_queues(Settings(BSS_BROKER_URL=url, REDIS_URL=redis_url))
    yield url


@dataclass
class OwnBroker:
    """A broker no other worker listens on, for workers of a test's own."""

    redis_url: str
    broker_url: str  # a RabbitMQ virtual host of its own; empty on Redis

    @property
    def update(self) -> dict[str, str]:
        """What to change in the stack's settings to send to these workers."""
        return {"redis_url": self.redis_url, "broker_url": self.broker_url}


@pytest.fixture
def own_broker(supervisor: Supervisor, broker_url: str) -> Iterator[OwnBroker]:
    """An embedded Redis of the test's own and, on RabbitMQ, a new virtual host (made with this
    machine's rabbitmqctl, deleted afterwards); skipped without rabbitmqctl, failed in CI."""
    redis_url = supervisor.start_redis(port=free_port())
    if not broker_url:
        yield OwnBroker(redis_url, "")
        return
    with own_virtual_host(broker_url) as own:
        yield OwnBroker(redis_url, own)


@contextmanager
def own_virtual_host(broker_url: str) -> Iterator[str]:
    """`broker_url` on a new RabbitMQ virtual host, made with this machine's rabbitmqctl and
    deleted afterwards; skipped without rabbitmqctl, failed in CI."""
    parts = urlsplit(broker_url)
    vhost = f"bss-test-{uuid.uuid4().hex[:10]}"
    user = parts.username or "guest"
    try:
        if parts.hostname not in ("127.0.0.1", "localhost"):
            raise OSError(f"rabbitmqctl reaches this machine's RabbitMQ, not {parts.hostname}")
        rabbitmqctl("add_vhost", vhost)
        rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    except (OSError, subprocess.SubprocessError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"a RabbitMQ virtual host of the test's own: {exc}")
        pytest.skip(f"a RabbitMQ virtual host of the test's own needs rabbitmqctl: {exc}")
    try:
        yield parts._replace(path="/" + quote(vhost, safe="")).geturl()
    finally:
        rabbitmqctl("delete_vhost", vhost)


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def stack(
    supervisor: Supervisor,
    database_url: str,
    redis_url: str,
    broker_url: str,
    secret_keys: str,
    sandbox_url: str,
    sandbox_smtp: tuple[str, int, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Stack:
    port, metrics_port = free_port(), free_port()
    smtp_host, smtp_port, smtp_ca_file = sandbox_smtp
    web = f"http://127.0.0.1:{port}"
    env = {
        # Dramatiq's Prometheus exposition of the worker processes: a port and files of our own.
        "dramatiq_prom_port": str(metrics_port),
        "dramatiq_prom_host": "127.0.0.1",
        "dramatiq_prom_db": str(tmp_path_factory.mktemp("prometheus")),
        "BSS_HOME": str(tmp_path_factory.mktemp("home")),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "BSS_BROKER_URL": broker_url,
        "BSS_SECRET_KEYS": secret_keys,
        "GOOGLE_SANDBOX_URL": sandbox_url,
        # The sandbox's Gmail SMTP, its self-signed certificate trusted.
        "GOOGLE_SMTP_HOST": smtp_host,
        "GOOGLE_SMTP_PORT": str(smtp_port),
        "GOOGLE_SMTP_CA_FILE": smtp_ca_file,
        "BSS_PUBLIC_BASE_URLS": web,
        "BSS_JOB_RETRY_BASE_SECONDS": "0.2",
        "BSS_JOB_RETRY_MAX_SECONDS": "2",
        "BSS_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
        "BSS_WEBHOOK_RETRY_MAX_SECONDS": "1",
        # The tests' webhook receivers listen on this machine.
        "BSS_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "GOOGLE_HTTP_TIMEOUT": "5",
    }
    proc, _worker = start_app(supervisor, env, port=port, web_threads=4, worker_threads=2)
    wait_http(f"{web}/healthz", proc=proc)
    settings = Settings(**{k: v for k, v in env.items() if not k.startswith("dramatiq_")})
    return Stack(
        web=web,
        sandbox=sandbox_url,
        settings=settings,
        worker_metrics=f"http://127.0.0.1:{metrics_port}/metrics",
    )


def make_tenant(stack: Stack, *, name: str = "Distributor") -> Tenant:
    """A distributor with an API key and an instance `main` authenticated at a new sandbox
    reseller of its own."""
    made = sandbox_tenant(
        stack.sandbox,
        stack.settings,
        name=f"{name} {uuid.uuid4().hex[:8]}",
        redirect_uris=[f"{stack.web}/cb"],
        api_key_label="test",
    )
    assert made.api_key is not None
    return Tenant(
        made.api_key,
        made.instance,
        made.reseller,
        made.admin,
        made.client_id,
        made.client_secret,
        stack,
    )


@pytest.fixture
def tenant(stack: Stack, sandbox: str) -> Tenant:
    """A tenant of its own in a sandbox emptied for this test."""
    return make_tenant(stack)


@pytest.fixture
def another_tenant(stack: Stack, tenant: Tenant) -> Tenant:
    """A second distributor, with its own instance at its own sandbox reseller."""
    return make_tenant(stack, name="Second")
