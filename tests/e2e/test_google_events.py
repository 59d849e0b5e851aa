"""Google tells us what changed, end to end: the sandbox over HTTP pushes its notifications with
real OIDC tokens to our web app (gunicorn), a real worker process processes them, and billing's
webhook receiver hears of them. Changes are made "in the Admin console" of the sandbox."""

from __future__ import annotations

import base64
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from conftest import Tenant, make_tenant
from cryptography.hazmat.primitives.asymmetric import rsa
from pipeline import WebhookReceiver, accept_tos, new_domain, order_params, sandbox_post
from sqlmodel import func, select

from bss.broker import make_broker, send_google_event
from bss.crypto import Vault
from bss.db import session_scope
from bss.events import register_events
from bss.gateway import REQUIRED_SCOPES
from bss.instances import store_oauth_grant
from bss.models import Distributor, GoogleEvent, Instance
from bss.notify import configure_webhook
from bss.settings import Settings
from bss.tools import Supervisor, free_port, wait_http

STARTER = "1010020027"
PLATFORM_RESELLER, PLATFORM_PROJECT = "bss-platform.example", "bss-platform"


@dataclass
class EventsStack:
    web: str
    sandbox: str
    settings: Settings
    key_file: Path


@pytest.fixture(scope="module")
def events_stack(
    database_url: str,
    redis_url: str,
    broker_url: str,
    secret_keys: str,
    sandbox_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[EventsStack]:
    """Web and worker processes with notifications on: the platform's service-account key file
    (rewritten for each test, as the sandbox is reset) and our push URL. They are this module's
    own and stop with it, so later tests see only the shared stack's worker."""
    home = tmp_path_factory.mktemp("events-home")
    supervisor = Supervisor(log_dir=home / "logs")
    port = free_port()
    web = f"http://127.0.0.1:{port}"
    env = {
        "BSS_HOME": str(home),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "BSS_BROKER_URL": broker_url,
        "BSS_SECRET_KEYS": secret_keys,
        "GOOGLE_SANDBOX_URL": sandbox_url,
        "BSS_PUBLIC_BASE_URLS": web,
        "BSS_EVENTS_SERVICE_ACCOUNT_FILE": str(home / "platform-key.json"),
        "BSS_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
        "BSS_WEBHOOK_RETRY_MAX_SECONDS": "1",
        "BSS_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "GOOGLE_HTTP_TIMEOUT": "5",
    }
    gunicorn = ["-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    proc = supervisor.start(
        "events-web", [sys.executable, *gunicorn, "--threads", "4", "web.wsgi:app"], env=env
    )
    supervisor.start(
        "events-worker",
        [sys.executable, "-m", "dramatiq", "workers", "--processes", "1", "--threads", "2"],
        env=env,
    )
    try:
        wait_http(f"{web}/healthz", proc=proc)
        yield EventsStack(web, sandbox_url, Settings(**env), home / "platform-key.json")
    finally:
        supervisor.stop_all()


@dataclass
class Notified:
    tenant: Tenant
    instance_id: int
    subscription: str
    hooks: WebhookReceiver

    def api(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tenant.api_key}"}
        url = f"{self.tenant.stack.web}/api/v1{path}"
        return requests.request(method, url, headers=headers, timeout=10, **kw)


@pytest.fixture
def notified(events_stack: EventsStack, sandbox: str) -> Iterator[Notified]:
    """A distributor with a webhook and an instance registered for push notifications."""
    sandbox_post(
        sandbox,
        "/_sandbox/resellers",
        {"domain": PLATFORM_RESELLER, "admin_email": f"admin@{PLATFORM_RESELLER}"},
    )
    sandbox_post(
        sandbox, "/_sandbox/projects", {"reseller": PLATFORM_RESELLER, "project_id": "bss-platform"}
    )
    key = sandbox_post(
        sandbox, "/_sandbox/service-accounts", {"project": PLATFORM_PROJECT, "name": "events"}
    )
    events_stack.key_file.write_text(json.dumps(key))
    tenant = make_tenant(events_stack)  # type: ignore[arg-type]
    hooks = WebhookReceiver()
    settings = events_stack.settings
    with session_scope(settings.database_url) as s:
        instance = s.exec(select(Instance).where(Instance.client_id == tenant.client_id)).one()
        distributor = s.get(Distributor, instance.distributor_id)
        assert distributor is not None
        configure_webhook(
            s,
            settings=settings,
            distributor=distributor,
            vault=Vault(settings.secret_keys.split(",")),
            url=hooks.url,
        )
        register_events(s, settings, instance, "push")
        assert instance.events_mode == "push", instance.events_error
        found = (instance.id, instance.events_subscription)
    assert found[0] is not None and found[1]
    yield Notified(tenant, found[0], found[1], hooks)
    hooks.close()


def console(sandbox: str, domain: str, change: dict[str, Any], sku: str = STARTER) -> None:
    sandbox_post(sandbox, f"/_sandbox/customers/{domain}/subscriptions/{sku}/console", change)


def knobs(sandbox: str, subscription: str, **values: Any) -> None:
    sandbox_post(sandbox, f"/_sandbox/pubsub/subscriptions/{subscription}", values)


def wait_for(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def told(n: Notified, event: str, **where: Any) -> list[dict[str, Any]]:
    """Billing's webhook deliveries of `event` whose data match `where` (after.seats=7 →
    after__seats=7)."""
    out = []
    for body in n.hooks.events():
        if body["event"] != event:
            continue
        data = body["data"]
        ok = True
        for key, want in where.items():
            value: Any = data
            for part in key.split("__"):
                value = (value or {}).get(part)
            ok = ok and value == want
        if ok:
            out.append(data)
    return out


def ordered(n: Notified, **subscription: Any) -> str:
    """A customer ordered through the billing API (its job succeeded); its domain."""
    domain = new_domain()
    params = order_params(domain)
    params["subscriptions"] = [{"sku_id": STARTER, "plan": "FLEXIBLE", "seats": 5, **subscription}]
    job = n.tenant.submit("order.create", params).json()
    assert n.tenant.wait(job["id"])["state"] == "succeeded"
    # Google's own notification of the new subscription reaches the mirror first
    assert wait_for(lambda: told(n, "subscription.changed", customer_domain=domain))
    return domain


def open_drift(n: Notified, domain: str) -> list[dict[str, Any]]:
    resp = n.api("GET", "/drift", params={"customer": domain})
    assert resp.status_code == 200, resp.text
    return list(resp.json()["drift"])


def stored_of(settings: Settings, domain: str, event_type: str) -> list[int]:
    with session_scope(settings.database_url) as s:
        rows = s.exec(
            select(GoogleEvent).where(
                GoogleEvent.customer_domain == domain, GoogleEvent.event_type == event_type
            )
        ).all()
        return [r.id for r in rows if r.id is not None]


def reauthenticate(n: Notified) -> None:
    """The distributor clicks Authenticate Instance again: a new refresh token."""
    settings, t = n.tenant.stack.settings, n.tenant
    grant = sandbox_post(
        t.stack.sandbox,
        "/_sandbox/tokens",
        {"client_id": t.client_id, "user": t.admin, "scopes": list(REQUIRED_SCOPES)},
    )
    with session_scope(settings.database_url) as s:
        instance = s.get(Instance, n.instance_id)
        assert instance is not None
        store_oauth_grant(
            s,
            instance,
            vault=Vault(settings.secret_keys.split(",")),
            refresh_token=grant["refresh_token"],
            scopes=grant["scope"].split(),
            authenticated_as=t.admin,
        )


def stored(settings: Settings) -> int:
    with session_scope(settings.database_url) as s:
        return int(s.exec(select(func.count()).select_from(GoogleEvent)).one())


def test_a_console_seat_change_reaches_billing_and_shows_as_drift(notified: Notified) -> None:
    n, sandbox = notified, notified.tenant.stack.sandbox
    domain = ordered(n)
    # When the customer's admin raises the seats to 7 in the Admin console
    started = time.monotonic()
    console(sandbox, domain, {"seats": 7})
    # Then billing hears subscription.changed (5 → 7) within seconds, and of the drift
    changed = wait_for(lambda: told(n, "subscription.changed", after__seats=7))
    elapsed = time.monotonic() - started
    assert changed and changed[0]["before"]["seats"] == 5, n.hooks.events()
    assert elapsed < 10
    assert wait_for(lambda: told(n, "subscription.drifted", drift__field="seats"))
    [drift] = open_drift(n, domain)
    assert (drift["field"], drift["desired"], drift["actual"]) == ("seats", 5, 7)
    assert drift["desired_job_id"]  # the order that set 5


def test_duplicated_and_reordered_pushes_change_nothing_twice(notified: Notified) -> None:
    n, sandbox = notified, notified.tenant.stack.sandbox
    domain = ordered(n)
    # A push delivered twice
    knobs(sandbox, n.subscription, duplicate=1)
    console(sandbox, domain, {"seats": 8})
    assert wait_for(lambda: told(n, "subscription.changed", after__seats=8))
    time.sleep(2)  # the second delivery, and anything it might wrongly cause
    assert len(told(n, "subscription.changed", after__seats=8)) == 1
    # Two pushes delivered out of order: 9 seats, then 10 (10's arrives first)
    knobs(sandbox, n.subscription, reorder=1)
    console(sandbox, domain, {"seats": 9})
    console(sandbox, domain, {"seats": 10})
    assert wait_for(lambda: told(n, "subscription.changed", after__seats=10))
    time.sleep(2)
    assert len(told(n, "subscription.changed", after__seats=10)) == 1
    assert told(n, "subscription.changed", after__seats=9) == []  # Google had moved on
    assert len(told(n, "subscription.drifted", drift__field="seats")) <= 3
    [drift] = open_drift(n, domain)
    assert drift["actual"] == 10


def test_forged_and_foreign_tokens_are_refused_and_stored_nowhere(notified: Notified) -> None:
    n = notified
    settings = n.tenant.stack.settings
    body = {
        "message": {
            "data": base64.b64encode(json.dumps({"eventType": "RENEWED"}).encode()).decode(),
            "messageId": uuid.uuid4().hex,
            "publishTime": "2026-01-01T00:00:00Z",
        },
        "subscription": n.subscription,
    }
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    email = json.loads(Path(settings.events_service_account_file).read_text())["client_email"]
    now = int(time.time())
    claims = {"iss": "https://accounts.google.com", "email": email, "email_verified": True}
    forged = jwt.encode(
        {**claims, "aud": settings.push_url, "iat": now, "exp": now + 600}, forger, "RS256"
    )
    before = stored(settings)
    for authorization in (None, "Bearer " + forged, "Bearer not.a.token"):
        headers = {"Authorization": authorization} if authorization else {}
        resp = requests.post(
            f"{n.tenant.stack.web}/google/events", json=body, headers=headers, timeout=10
        )
        assert resp.status_code in (401, 403), resp.text
        assert forged not in resp.text
    assert stored(settings) == before


def test_a_renewal_with_type_cancel_ends_the_subscription_and_billing_hears(
    notified: Notified,
) -> None:
    n, sandbox = notified, notified.tenant.stack.sandbox
    domain = ordered(n, plan="ANNUAL_MONTHLY_PAY", renewal_type="CANCEL")
    accept_tos(sandbox, domain)  # only an active commitment renews (or ends)
    sandbox_post(sandbox, "/_sandbox/clock", {"advance_seconds": 370 * 86400})
    # A year without using it killed the instance's refresh token (Google's six-month rule):
    # the notification waits, the distributor authenticates again, the scheduler re-sends it.
    settings = n.tenant.stack.settings
    [waiting] = wait_for(lambda: stored_of(settings, domain, "CANCELLED"))
    reauthenticate(n)
    broker = make_broker(settings)
    send_google_event(broker, waiting)
    ended = wait_for(lambda: told(n, "subscription.suspended", customer_domain=domain))
    assert ended and ended[0]["reasons"] == ["RENEWAL_WITH_TYPE_CANCEL"], n.hooks.events()
    assert told(n, "subscription.changed", customer_domain=domain, after__status="SUSPENDED")
    assert open_drift(n, domain) == []  # billing asked for it to end


def test_a_transfer_away_marks_the_customer_and_tells_billing(notified: Notified) -> None:
    n, sandbox = notified, notified.tenant.stack.sandbox
    domain = ordered(n)
    console(sandbox, domain, {"transfer_to": "direct"})
    assert wait_for(lambda: told(n, "customer.transferred_away", customer_domain=domain))
    resp = n.api("GET", f"/customers/{domain}")
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "transferred_away"
    [drift] = wait_for(lambda: open_drift(n, domain))
    assert drift["field"] == "customer"
    refused = n.api("POST", f"/drift/{drift['id']}/resolve", json={"action": "restore"})
    assert refused.status_code == 409 and "transfer" in refused.text


def test_resolving_drift_either_way_leaves_no_open_difference(notified: Notified) -> None:
    n, sandbox = notified, notified.tenant.stack.sandbox
    domain = ordered(n)
    accept_tos(sandbox, domain)  # Google changes only an active subscription
    # Accept: Google's 7 seats become what billing wants
    console(sandbox, domain, {"seats": 7})
    [drift] = wait_for(lambda: open_drift(n, domain))
    resp = n.api("POST", f"/drift/{drift['id']}/resolve", json={"action": "accept"})
    assert resp.status_code == 200, resp.text
    assert open_drift(n, domain) == []
    # Restore: Google's 9 seats are put back to 7 by a job
    console(sandbox, domain, {"seats": 9})
    [drift] = wait_for(lambda: [d for d in open_drift(n, domain) if d["actual"] == 9])
    resp = n.api("POST", f"/drift/{drift['id']}/resolve", json={"action": "restore"})
    assert resp.status_code == 202, resp.text
    job = n.tenant.wait(resp.json()["job_id"])
    assert job["state"] == "succeeded", job
    assert wait_for(lambda: told(n, "subscription.changed", customer_domain=domain, after__seats=7))
    time.sleep(1.5)  # the job's own change arrives as an event too: not drift
    assert open_drift(n, domain) == []
