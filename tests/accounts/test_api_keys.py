"""API keys: listed and revoked one at a time, and the `bss api-keys` command."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlmodel import select

from bss.accounts import create_api_key, list_api_keys, revoke_api_key
from bss.db import session_scope
from bss.errors import NotFound
from bss.settings import get_settings
from bss.tools import main


def test_api_keys_are_listed_and_revoked_one_at_a_time(settings, tenant):
    with session_scope(settings.database_url) as s:
        create_api_key(s, distributor=tenant, label="billing")
        create_api_key(s, distributor=tenant, label="billing")
        keys = list_api_keys(s, distributor=tenant)
        revoke_api_key(s, distributor=tenant, key_id=keys[0].prefix)
        with pytest.raises(NotFound):
            revoke_api_key(s, distributor=tenant, key_id="bss_nope")
        states = [k.revoked_at is None for k in list_api_keys(s, distributor=tenant)]
    assert states == [False, True]


def test_the_api_keys_command_creates_lists_and_revokes(settings, tenant, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("BSS_HOME", str(settings.home))
    monkeypatch.setenv("BSS_SECRET_KEYS", settings.secret_keys)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        made = runner.invoke(main, ["api-keys", "create", tenant.slug, "--label", "erp"])
        assert made.exit_code == 0 and made.output.startswith("bss_")
        listed = runner.invoke(main, ["api-keys", "list", tenant.slug])
        assert "erp" in listed.output and "active" in listed.output
        assert made.output.strip() not in listed.output  # shown once, never again
        [listed_key] = json.loads(
            runner.invoke(main, ["api-keys", "list", tenant.slug, "--json"]).output
        )
        key_id = str(listed_key["id"])
        revoked = runner.invoke(main, ["api-keys", "revoke", tenant.slug, key_id])
        assert revoked.exit_code == 0, revoked.output
        assert "revoked" in runner.invoke(main, ["api-keys", "list", tenant.slug]).output
        missing = runner.invoke(main, ["api-keys", "revoke", tenant.slug, "999999"])
        assert missing.exit_code != 0 and "No API key" in missing.output
    finally:
        get_settings.cache_clear()


def test_a_keys_last_use_is_written_once_a_minute_not_on_every_request(settings, tenant):
    from datetime import timedelta

    from bss.models import ApiKey
    from web import create_app

    with session_scope(settings.database_url) as s:
        key = create_api_key(s, distributor=tenant, label="billing")
    client = create_app(settings).test_client()
    headers = {"Authorization": f"Bearer {key}"}

    def last_used():
        with session_scope(settings.database_url) as s:
            return s.exec(select(ApiKey).where(ApiKey.prefix == key[:12])).one().last_used_at

    assert client.get("/api/v1/jobs", headers=headers).status_code == 200
    first = last_used()
    assert first is not None  # the API access page shows when a key was last used
    assert client.get("/api/v1/jobs", headers=headers).status_code == 200
    assert last_used() == first  # a second request within the minute writes nothing
    with session_scope(settings.database_url) as s:
        row = s.exec(select(ApiKey).where(ApiKey.prefix == key[:12])).one()
        row.last_used_at = first - timedelta(minutes=2)
        s.add(row)
    assert client.get("/api/v1/jobs", headers=headers).status_code == 200
    assert last_used() > first - timedelta(minutes=1)
