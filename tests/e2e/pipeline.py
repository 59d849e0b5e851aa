"""Helpers of the pipeline's end-to-end tests: the sandbox's state and faults, order bodies, the
broker's queues."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import redis
import requests

from bss.broker import EVENTS_QUEUE, JOBS_QUEUE, MAIL_QUEUE, WEBHOOKS_QUEUE, make_broker
from bss.settings import Settings
from bss.tools import Supervisor

STARTER, STANDARD, PLUS = "1010020027", "1010020028", "1010020025"


def start_app(
    supervisor: Supervisor,
    env: dict[str, str],
    *,
    port: int,
    web_threads: int,
    worker_threads: int,
    prefix: str = "",
) -> tuple[subprocess.Popen, subprocess.Popen]:
    """The web app (gunicorn, one process) on `port` and a Dramatiq worker process, started as
    a deployment starts them."""
    web = supervisor.start(
        f"{prefix}web",
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--threads", str(web_threads), "web.wsgi:app"],
        env=env,
    )  # fmt: skip
    worker = supervisor.start(
        f"{prefix}worker",
        [sys.executable, "-m", "dramatiq", "workers", "--processes", "1",
         "--threads", str(worker_threads)],
        env=env,
    )  # fmt: skip
    return web, worker


def purge_queues(settings: Settings) -> None:
    """Drop every message waiting in the broker's queues (ready, delayed and dead)."""
    broker = make_broker(settings)
    try:
        for queue in (JOBS_QUEUE, WEBHOOKS_QUEUE, EVENTS_QUEUE, MAIL_QUEUE):
            broker.flush(queue)
    finally:
        broker.close()


def lose_queued_messages(settings: Settings) -> None:
    """The broker loses its messages: the Redis database is emptied (as when Redis restarts
    without its data), RabbitMQ's queues are purged (what a worker already holds stays with
    it)."""
    if settings.broker_url:
        purge_queues(settings)
    else:
        redis.Redis.from_url(settings.redis_url).flushdb()


def sandbox_post(sandbox: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST to the sandbox's control API; fail the test if it refuses."""
    resp = requests.post(sandbox + path, json=body, timeout=10)
    assert resp.status_code < 300, resp.text
    return resp.json()


def state(sandbox: str) -> dict[str, Any]:
    """Everything the sandbox (Google) holds now."""
    resp = requests.get(f"{sandbox}/_sandbox/state", timeout=10)
    resp.raise_for_status()
    return resp.json()


def calls(sandbox: str, method: str) -> list[dict[str, Any]]:
    """The sandbox's log of calls to `method` (a glob)."""
    resp = requests.get(f"{sandbox}/_sandbox/calls", params={"method": method}, timeout=10)
    resp.raise_for_status()
    return resp.json()["calls"]


def fault(sandbox: str, method: str, kind: str = "error", **spec: Any) -> None:
    """Inject a fault into the next call(s) of `method`."""
    body = {"method": method, "kind": kind, "times": 1, **spec}
    requests.post(f"{sandbox}/_sandbox/faults", json=body, timeout=10).raise_for_status()


def accept_tos(sandbox: str, domain: str) -> None:
    """The customer's admin accepts Google's terms: its subscriptions become active."""
    resp = requests.post(f"{sandbox}/_sandbox/customers/{domain}/accept-tos", timeout=10)
    resp.raise_for_status()


def customers(sandbox: str, domain: str) -> list[dict[str, Any]]:
    return [c for c in state(sandbox)["customers"] if c["customerDomain"] == domain]


def subscriptions(sandbox: str, domain: str) -> list[dict[str, Any]]:
    return [s for s in state(sandbox)["subscriptions"] if s["customerDomain"] == domain]


def users(sandbox: str, domain: str) -> list[dict[str, Any]]:
    return [u for u in state(sandbox)["users"] if u["primaryEmail"].endswith("@" + domain)]


def licenses(sandbox: str, sku: str) -> set[str]:
    return {lic["userId"] for lic in state(sandbox)["licenses"] if lic["skuId"] == sku}


def new_domain() -> str:
    return f"acme-{uuid.uuid4().hex[:8]}.example"


def customer_params(domain: str) -> dict[str, Any]:
    return {
        "domain": domain,
        "alternate_email": "it@acme-billing.example.net",
        "postal_address": {
            "contact_name": "Ada Admin",
            "organization_name": "Acme Widgets",
            "postal_code": "94043",
            "country_code": "US",
        },
    }


def order_params(domain: str, **extra: Any) -> dict[str, Any]:
    return {
        "customer": customer_params(domain),
        "admin": {"primary_email": f"ada@{domain}", "given_name": "Ada", "family_name": "Admin"},
        "subscriptions": [{"sku_id": STARTER, "plan": "FLEXIBLE", "seats": 5}],
        **extra,
    }


class WebhookReceiver:
    """A billing system's webhook endpoint: records every request; fails the first N."""

    def __init__(self, *, fail_first: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.requests.append({"headers": headers, "body": body})
                failing = len(receiver.requests) <= receiver.fail_first
                self.send_response(503 if failing else 204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/bss"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
