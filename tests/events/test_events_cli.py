"""`bss instances events` and `bss reconcile` from a shell, and the notifications line of
`bss doctor`, against the tests' database and the sandbox over HTTP."""

from __future__ import annotations

import uuid

import pytest
from click.testing import CliRunner

from bss.db import session_scope
from bss.models import Distributor, Instance
from bss.settings import get_settings
from bss.tools.cli import main
from tests.support.reseller_notify import (
    console,
    customer,
    events_settings,
    instance_of,
    new_reseller,
    platform_key,
)


@pytest.fixture
def bss(settings, sandbox, tmp_path, monkeypatch):
    key = platform_key(sandbox, tmp_path)
    for name, value in {
        "DATABASE_URL": settings.database_url,
        "BSS_HOME": str(settings.home),
        "BSS_SECRET_KEYS": settings.secret_keys,
        "GOOGLE_SANDBOX_URL": sandbox,
        "BSS_PUBLIC_BASE_URLS": "http://127.0.0.1:8123",
        "BSS_EVENTS_SERVICE_ACCOUNT_FILE": str(key),
        "REDIS_URL": "",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(main, list(args))
    get_settings.cache_clear()


def test_register_reconcile_and_doctor_from_a_shell(bss, settings, sandbox, tmp_path):
    s = events_settings(settings, sandbox, None)
    reseller = new_reseller(sandbox)
    instance_id = instance_of(s, reseller)
    with session_scope(s.database_url) as db:
        instance = db.get(Instance, instance_id)
        ref = f"{db.get(Distributor, instance.distributor_id).slug}/main"
    doctor = bss("doctor", ref)
    assert "PASS  Google notifications: not registered (off)" in doctor.output, doctor.output
    refused = bss("instances", "events", ref, "sometimes")
    assert refused.exit_code == 2 and "'sometimes' is not one of 'push', 'pull', 'off'" in (
        refused.output
    )
    pushed = bss("instances", "events", ref, "push")
    assert pushed.exit_code == 0, pushed.output
    assert "notifications push" in pushed.output
    assert "pushed to http://127.0.0.1:8123/google/events" in pushed.output
    doctor = bss("doctor", ref)
    assert "PASS  Google notifications: push since" in doctor.output, doctor.output
    domain = f"shell-{uuid.uuid4().hex[:6]}.example"
    customer(reseller, domain, seats=4)
    first = bss("reconcile", ref)
    assert first.exit_code == 0 and "1 customer, 1 subscription" in first.output, first.output
    bss("instances", "events", ref, "off")
    console(sandbox, domain, {"seats": 6})
    found = bss("reconcile", ref)
    assert f"{domain}  1010020027  seats: 4 -> 6" in found.output, found.output
    doctor = bss("doctor", ref)
    assert "PASS  Google notifications: not registered (off)" in doctor.output
    missing = bss("reconcile", "nobody/none")
    assert missing.exit_code == 1 and "nobody" in missing.output
