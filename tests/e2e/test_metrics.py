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
    assert resp.json()["checks"] == {"database": "ok", "redis": "ok"}
