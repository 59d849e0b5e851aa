"""Backup of a running stack, restore into a fresh install (a new BSS_HOME and a new database:
PostgreSQL when BSS_TEST_DATABASE_URL is set, else SQLite), then an order on the restored
instance succeeds at Google without a new consent; with a key missing, the restore changes
nothing and names the key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from bss.crypto import generate_key, key_id
from bss.db import get_engine
from bss.tools import free_port, wait_http
from tests.e2e.pipeline import customers, new_domain, start_app
from tests.support.databases import new_database

FINAL = {"succeeded", "failed", "cancelled"}


def customer_params(domain: str) -> dict[str, object]:
    return {
        "domain": domain,
        "alternate_email": "it@acme.example.net",
        "postal_address": {
            "contact_name": "Ada Admin",
            "organization_name": "Acme",
            "postal_code": "94043",
            "country_code": "US",
        },
    }


@pytest.fixture
def fresh_database(tmp_path: Path) -> Iterator[str]:
    """A new, empty database: on BSS_TEST_DATABASE_URL's server, or a SQLite file not yet made."""
    with new_database(tmp_path / "restored" / "bss.db", "bss_restored") as url:
        yield url


def bss(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The `bss` command, as an operator types it."""
    return subprocess.run(
        [sys.executable, "-m", "bss", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_order_succeeds_on_an_instance_restored_from_a_backup_of_a_running_stack(
    tenant, supervisor, own_broker, fresh_database, tmp_path
):
    stack = tenant.stack
    settings = stack.settings
    running = {
        "DATABASE_URL": settings.database_url,
        "BSS_SECRET_KEYS": settings.secret_keys,
        "BSS_HOME": str(settings.home),
    }
    # Given a running stack with an authenticated instance, an order done and one under way
    first = tenant.submit("customer.create", customer_params(new_domain())).json()["id"]
    assert tenant.wait(first)["state"] == "succeeded"
    busy = tenant.submit("customer.create", customer_params(new_domain())).json()["id"]

    # When the operator backs it up meanwhile, with the CLI
    archive = tmp_path / "backups" / "bss-backup.zip"
    archive.parent.mkdir()
    run = bss("backup", str(archive), env=running, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    needed = key_id(settings.secret_keys.split(",")[0])
    assert needed in run.stdout and "NOT in the archive" in run.stdout
    tenant.wait(busy)

    # And restores it into a fresh install that lacks the key: refused, nothing changed
    home = tmp_path / "fresh-home"
    home.mkdir()
    fresh = {"DATABASE_URL": fresh_database, "BSS_HOME": str(home)}
    run = bss("restore", str(archive), env={**fresh, "BSS_SECRET_KEYS": generate_key()}, cwd=home)
    assert run.returncode == 1
    assert needed in run.stderr and "BSS_SECRET_KEYS" in run.stderr
    assert no_tables(fresh_database)

    # And then with the same BSS_SECRET_KEYS
    fresh["BSS_SECRET_KEYS"] = settings.secret_keys
    run = bss("restore", str(archive), env=fresh, cwd=home)
    assert run.returncode == 0, run.stderr
    assert "authenticated" in run.stdout

    # And starts a web app and a worker on the restored database (a Redis of their own)
    port = free_port()
    web = f"http://127.0.0.1:{port}"
    env = {
        **fresh,
        **{k: v for k, v in os.environ.items() if k.startswith("BSS_TEST")},
        "REDIS_URL": own_broker.redis_url,
        "BSS_BROKER_URL": own_broker.broker_url,
        "GOOGLE_SANDBOX_URL": stack.sandbox,
        "BSS_PUBLIC_BASE_URLS": web,
        "GOOGLE_HTTP_TIMEOUT": "5",
    }
    restored = start_app(
        supervisor, env, port=port, web_threads=2, worker_threads=1, prefix="restored-"
    )
    try:
        wait_http(f"{web}/healthz", proc=restored[0])
        api = {"Authorization": f"Bearer {tenant.api_key}"}
        # Then billing's API key works there and the earlier order is on record
        old = requests.get(f"{web}/api/v1/jobs/{first}", headers=api, timeout=10)
        assert old.status_code == 200 and old.json()["state"] == "succeeded"
        # And an order on the restored instance reaches Google, with no new consent
        domain = new_domain()
        resp = requests.post(
            f"{web}/api/v1/jobs",
            json={
                "instance": tenant.instance,
                "operation": "customer.create",
                "params": customer_params(domain),
            },
            headers=api,
            timeout=10,
        )
        assert resp.status_code == 202, resp.text
        job = wait(web, api, resp.json()["id"])
        assert job["state"] == "succeeded", job
        assert [c["customerDomain"] for c in customers(stack.sandbox, domain)] == [domain]
    finally:
        for proc in restored:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in restored:
            proc.wait(20)


def wait(web: str, headers: dict[str, str], job_id: str, timeout: float = 45) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = requests.get(f"{web}/api/v1/jobs/{job_id}", headers=headers, timeout=10).json()
        if job["state"] in FINAL or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def no_tables(url: str) -> bool:
    """Whether the database holds no table (a SQLite file not made counts)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return not Path(str(parsed.database)).exists()
    with get_engine(url).connect() as conn:
        return inspect(conn).get_table_names() == []
