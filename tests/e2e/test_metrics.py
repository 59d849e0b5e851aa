"""What an operator's Prometheus sees of the running system."""

from __future__ import annotations

import time

import requests


def scrape(web: str, name: str) -> float | None:
    for line in requests.get(f"{web}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_the_running_worker_process_is_seen_alive(stack):
    deadline = time.monotonic() + 30
    alive = scrape(stack.web, "bss_workers_alive")
    while not alive and time.monotonic() < deadline:
        time.sleep(0.5)
        alive = scrape(stack.web, "bss_workers_alive")
    assert alive == 1


def test_readyz_reports_the_database_and_redis(stack):
    resp = requests.get(f"{stack.web}/readyz", timeout=10)
    assert resp.status_code == 200
    # RabbitMQ (BSS_BROKER_URL) is checked besides Redis
    broker = {"broker": "ok"} if stack.settings.broker_url else {}
    assert resp.json()["checks"] == {"database": "ok", "redis": "ok", **broker}


def test_the_workers_count_their_google_calls_and_dramatiq_messages(tenant):
    # Given a job that asks Google for a free domain, then creates the customer
    job = tenant.submit(
        "customer.create",
        {
            "domain": "metrics-check.example",
            "alternate_email": "it@metrics.example.net",
            "postal_address": {
                "contact_name": "M",
                "organization_name": "M",
                "postal_code": "1",
                "country_code": "US",
            },
        },
    ).json()
    assert tenant.wait(job["id"])["state"] == "succeeded"
    # Then the workers' Prometheus endpoint counts those calls by method and status
    deadline = time.monotonic() + 15
    while True:
        try:
            body = requests.get(tenant.stack.worker_metrics, timeout=5).text
        except requests.ConnectionError:
            body = ""
        if "bss_google_calls_total" in body or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    lines = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line and not line.startswith("#")
    }
    get = 'bss_google_calls_total{api="reseller",method="reseller.customers.get",status="404"}'
    insert = (
        'bss_google_calls_total{api="reseller",method="reseller.customers.insert",status="200"}'
    )
    assert lines.get(get, 0) >= 1 and lines.get(insert, 0) >= 1, body[:2000]
    assert any(k.startswith("dramatiq_messages_total") for k in lines)
    assert lines.get("bss_token_refreshes_total", 0) >= 1
