"""`bss bench --scenario sandbox-state`: the sandbox's CPU per mutating call with a state file,
at 10 customers and at 10,000 (item 12: a call must not cost more as the state grows)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click
import requests

from bss.tools.processes import free_port, wait_http

RESELLER = "reseller.example"
ADMIN = "admin@" + RESELLER
ORDER_SCOPE = "https://www.googleapis.com/auth/apps.order"
SKU = "1010020027"  # Business Starter
SEATS = {"maximumNumberOfSeats": 5}
#: Calls made before measuring, so imports and first-use caches do not count.
WARM_UP_ORDERS = 10


def _seed(path: Path, customers: int) -> str:
    """Write a state file holding a reseller, its OAuth client and `customers` customers (each
    with an admin and a subscription), built by a sandbox app in this process; the access
    token for the reseller's admin."""
    from bss.sandbox import create_app

    app = create_app()
    client = app.test_client()

    def post(url: str, body: dict) -> dict:
        response = client.post("/_sandbox/" + url, json=body)
        assert response.status_code < 300, response.get_data(as_text=True)
        return response.get_json()

    post("resellers", {"domain": RESELLER, "admin_email": ADMIN})
    project = post("projects", {"reseller": RESELLER})["project_id"]
    web = post("clients", {"project": project, "name": "Bench", "redirect_uris": []})["web"]
    token = post("tokens", {"client_id": web["client_id"], "user": ADMIN, "scopes": [ORDER_SCOPE]})
    for i in range(customers):
        domain = f"seed{i}.example"
        post(
            "customers",
            {
                "customerDomain": domain,
                "reseller": RESELLER,
                "admin_email": f"admin@{domain}",
                "subscriptions": [{"skuId": SKU, "planName": "FLEXIBLE", "seats": SEATS}],
            },
        )
    state = app.extensions["sandbox"]
    with state.lock:
        path.write_text(json.dumps(state.to_json()), encoding="utf-8")
    return str(token["access_token"])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _order(http: requests.Session, origin: str, n: int, tag: str) -> None:
    """customers.insert, then subscriptions.insert for it: what a provisioning order sends."""
    domain = f"{tag}{n}.example"
    customer: dict[str, Any] = {
        "customerDomain": domain,
        "alternateEmail": f"owner@{tag}{n}.invalid",
        "postalAddress": {
            "contactName": "Bench Contact",
            "organizationName": domain,
            "postalCode": "94043",
            "countryCode": "US",
        },
    }
    answer = http.post(f"{origin}/apps/reseller/v1/customers", json=customer, timeout=60)
    answer.raise_for_status()
    cid = answer.json()["customerId"]
    subscription: dict[str, Any] = {
        "skuId": SKU,
        "plan": {"planName": "FLEXIBLE"},
        "seats": SEATS,
    }
    answer = http.post(
        f"{origin}/apps/reseller/v1/customers/{cid}/subscriptions", json=subscription, timeout=60
    )
    answer.raise_for_status()


def _measure(home: Path, customers: int, calls: int) -> dict:
    """Seed a state file, start a sandbox on it, and time `calls` mutating calls."""
    state_file = home / f"state-{customers}.json"
    started = time.monotonic()
    token = _seed(state_file, customers)
    seeded = time.monotonic() - started
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    log = open(home / f"sandbox-{customers}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "bss.sandbox", "--port", str(port), "--quiet"]
        + ["--state", str(state_file)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        start = time.monotonic()
        wait_http(f"{origin}/_sandbox/calls", timeout=120, proc=proc)
        start = time.monotonic() - start
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {token}"
        for n in range(WARM_UP_ORDERS):
            _order(http, origin, n, "warm")
        cpu, wall = _cpu_seconds(proc.pid), time.monotonic()
        for n in range(calls // 2):
            _order(http, origin, n, "bench")
        cpu, wall = _cpu_seconds(proc.pid) - cpu, time.monotonic() - wall
        files = sum(p.stat().st_size for p in home.glob(state_file.name + "*"))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
    return {
        "customers": customers,
        "seed_s": seeded,
        "start_s": start,
        "cpu_ms": cpu * 1000 / calls,
        "wall_ms": wall * 1000 / calls,
        "files_mb": files / 1e6,
    }


def run_sandbox_state(*, small: int = 10, large: int = 10_000, calls: int = 200) -> bool:
    """Print the sandbox's CPU ms per mutating call at `small` and `large` customers; False
    when the large state costs more than 1.5 times the small one."""
    home = Path(tempfile.mkdtemp(prefix="bss-bench-sandbox-"))
    try:
        results = [_measure(home, n, calls) for n in (small, large)]
    finally:
        shutil.rmtree(home, ignore_errors=True)
    for r in results:
        click.echo(
            f"{r['customers']:>6} customers: {r['cpu_ms']:6.2f} ms CPU per call, "
            f"{r['wall_ms']:6.2f} ms wall per call, state files {r['files_mb']:.1f} MB "
            f"(seeded in {r['seed_s']:.0f} s, started in {r['start_s']:.1f} s)"
        )
    ratio = results[1]["cpu_ms"] / results[0]["cpu_ms"]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    click.echo(
        f"ratio {large} / {small}: {ratio:.2f}   load average: {load} ({os.cpu_count()} cpus)"
    )
    return ratio < 1.5
