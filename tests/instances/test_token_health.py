"""The health an instance page shows follows the access tokens the workers obtain: a refresh in a
worker process (through the shared token cache) is recorded on the instance, so the page no
longer says "none obtained yet" while jobs run with a fresh token."""

from __future__ import annotations

import html
import os
import re
import signal
import sys
import time
import uuid
from datetime import UTC, timedelta

import redis
from google.auth.transport.requests import Request
from sqlmodel import select

from bss.broker import make_broker, send_job
from bss.crypto import vault_from_settings
from bss.db import session_scope
from bss.gateway import REQUIRED_SCOPES, TokenCache, instance_credentials
from bss.instances import create_instance, store_oauth_grant, token_refresh_recorder
from bss.jobs import submit_job
from bss.models import Distributor, Instance, InstanceHealth, Job, utcnow
from bss.settings import Settings
from bss.tools import free_port
from tests.support.portal import Google, sandbox_post
from tests.support.samples import CUSTOMER

FINAL = {"succeeded", "failed", "cancelled"}


def authenticated_like_the_demo(settings: Settings, google: Google, distributor_id: int) -> int:
    """An instance `main` holding a refresh token, with no token obtained by the portal yet
    (as `bss demo` and a migration leave it)."""
    grant = sandbox_post(
        google.sandbox,
        "/_sandbox/tokens",
        {"client_id": google.client_id, "user": google.admin, "scopes": list(REQUIRED_SCOPES)},
    )
    vault = vault_from_settings(settings)
    with session_scope(settings.database_url) as s:
        inst = create_instance(
            s,
            vault=vault,
            distributor=s.get(Distributor, distributor_id),
            name="main",
            client_id=google.client_id,
            client_secret=google.client_secret,
        )
        store_oauth_grant(
            s,
            inst,
            vault=vault,
            refresh_token=grant["refresh_token"],
            scopes=grant["scope"].split(),
            authenticated_as=google.admin,
        )
        # authenticated an hour ago: its last refresh is that old
        inst.last_refresh_at = utcnow() - timedelta(hours=1)
        s.add(inst)
        s.flush()
        return inst.id


def health_panel(portal, instance_id: int) -> str:
    resp = portal.get(f"/portal/instances/{instance_id}/health")
    assert resp.status_code == 200
    return html.unescape(re.sub(r"<[^>]+>", " ", resp.text))


def wait_for_job(database_url: str, job_id: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        with session_scope(database_url) as s:
            state = s.exec(select(Job.state).where(Job.id == job_id)).one()
        if state in FINAL or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


def test_a_refresh_by_a_worker_process_shows_on_the_instance_page(
    supervisor, settings_for_portal, portal, account, google, redis_url, tmp_path
):
    settings = settings_for_portal
    instance_id = authenticated_like_the_demo(settings, google, account.distributor_id)
    assert "none obtained yet" in health_panel(portal, instance_id)
    # Given a worker process on a Redis database of its own (no other test's worker takes the job)
    own_redis = redis_url.rsplit("/", 1)[0] + "/7"
    redis.Redis.from_url(own_redis).flushdb()
    env = {
        "BSS_HOME": str(tmp_path),
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": own_redis,
        "BSS_SECRET_KEYS": settings.secret_keys,
        "GOOGLE_SANDBOX_URL": google.sandbox,
        "GOOGLE_HTTP_TIMEOUT": "5",
        "dramatiq_prom_port": str(free_port()),
        "dramatiq_prom_host": "127.0.0.1",
        "dramatiq_prom_db": str(tmp_path / "prometheus"),
    }
    (tmp_path / "prometheus").mkdir()
    worker = supervisor.start(
        f"worker-token-health-{uuid.uuid4().hex[:6]}",
        [sys.executable, "-m", "dramatiq", "workers", "--processes", "1", "--threads", "1"],
        env=env,
    )
    try:
        # When a job of the instance runs there (its first Google call refreshes the token)
        with session_scope(settings.database_url) as s:
            job, _ = submit_job(
                s,
                distributor=s.get(Distributor, account.distributor_id),
                instance_name="main",
                operation="customer.create",
                params={**CUSTOMER, "domain": f"token-health-{uuid.uuid4().hex[:8]}.example"},
            )
            job_id = job.id
        send_job(make_broker(settings.model_copy(update={"redis_url": own_redis})), job_id)
        assert wait_for_job(settings.database_url, job_id) == "succeeded"
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(15)
    # Then the instance page shows the token the worker obtained, and when
    panel = health_panel(portal, instance_id)
    assert "none obtained yet" not in panel
    assert re.search(r"Access token\s+valid until", panel), panel
    with session_scope(settings.database_url) as s:
        refreshed_at = s.get(Instance, instance_id).last_refresh_at
        until = s.get(InstanceHealth, instance_id).access_token_expires_at
    assert refreshed_at > utcnow() - timedelta(minutes=2)
    assert until > utcnow() + timedelta(minutes=30)


def test_a_refresh_through_the_token_cache_is_recorded_once_per_token(
    settings_for_portal, account, google, redis_url
):
    settings = settings_for_portal
    instance_id = authenticated_like_the_demo(settings, google, account.distributor_id)
    vault = vault_from_settings(settings)
    client = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/8")
    client.flushdb()
    refreshes: list[int] = []
    record = token_refresh_recorder(settings.database_url)

    def on_refresh(instance_id, expires_at):
        refreshes.append(instance_id)
        record(instance_id, expires_at)

    cache = TokenCache(client, vault, on_refresh=on_refresh)
    with session_scope(settings.database_url) as s:
        inst = s.get(Instance, instance_id)
    # When two jobs take credentials: the first refreshes, the second takes the cached token
    for _ in range(2):
        creds = cache.wrap(
            instance_credentials(inst, vault=vault, settings=settings),
            instance_id=instance_id,
            grant="g",
        )
        creds.refresh(Request())
    # Then one refresh is recorded, with the token's expiry
    assert refreshes == [instance_id]
    with session_scope(settings.database_url) as s:
        recorded = s.get(InstanceHealth, instance_id).access_token_expires_at
        assert recorded == creds.expiry.replace(tzinfo=UTC)
        # the last Check's results are not invented
        assert s.get(InstanceHealth, instance_id).results == []


def test_a_failing_record_does_not_fail_the_refresh(
    settings_for_portal, account, google, redis_url
):
    settings = settings_for_portal
    instance_id = authenticated_like_the_demo(settings, google, account.distributor_id)
    vault = vault_from_settings(settings)
    client = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/9")
    client.flushdb()

    def broken(_instance_id, _expires_at):
        raise RuntimeError("database is locked")

    cache = TokenCache(client, vault, on_refresh=broken)
    with session_scope(settings.database_url) as s:
        inst = s.get(Instance, instance_id)
    creds = cache.wrap(
        instance_credentials(inst, vault=vault, settings=settings),
        instance_id=instance_id,
        grant="g",
    )
    creds.refresh(Request())
    assert creds.token
