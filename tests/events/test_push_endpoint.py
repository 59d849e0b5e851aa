"""POST /google/events: Google's pushes, with their real OIDC tokens from the sandbox over HTTP,
are stored once and handed to the workers; anything else is refused and stored nowhere."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlmodel import func, select
from werkzeug.serving import make_server

from bss.accounts import create_distributor
from bss.db import session_scope
from bss.models import GoogleEvent
from bss.settings import Settings
from bss.tools import free_port
from tests.support.google_events import (
    console,
    customer,
    knobs,
    notifying_google,
    push_to,
    subscribed_instance,
)
from web import create_app

SKU = "1010020027"


def _events(database_url: str, instance_id: int) -> list[GoogleEvent]:
    with session_scope(database_url) as s:
        rows = s.exec(select(GoogleEvent).where(GoogleEvent.instance_id == instance_id)).all()
        for row in rows:
            s.expunge(row)
        return list(rows)


def _count(database_url: str) -> int:
    with session_scope(database_url) as s:
        return int(s.exec(select(func.count()).select_from(GoogleEvent)).one())


def _wait(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("waited in vain")


@pytest.fixture
def stack(tmp_path: Path, database_url: str, secret_keys: str, redis_url: str, sandbox: str):
    """Our web app as a real server, the platform's service account, a registered reseller."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    notifying = notifying_google(sandbox, base, tmp_path)
    settings = Settings(
        BSS_HOME=str(tmp_path),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        BSS_SECRET_KEYS=secret_keys,
        BSS_SESSION_SECRET="push-" + uuid.uuid4().hex,
        GOOGLE_SANDBOX_URL=sandbox,
        BSS_PUBLIC_BASE_URLS=base,
        BSS_EVENTS_SERVICE_ACCOUNT_FILE=str(notifying.key_file),
    )
    app = create_app(settings)
    sent: list[int] = []
    app.extensions["bss.send_event"] = sent.append  # the broker is the edge: no worker here
    with session_scope(database_url) as s:
        distributor_id = create_distributor(s, name=f"Push {uuid.uuid4().hex[:6]}").id
    with served_on(app, port) as url:
        yield {
            "url": url,
            "app": app,
            "sent": sent,
            "notifying": notifying,
            "settings": settings,
            "distributor_id": distributor_id,
        }


@contextmanager
def served_on(app: Any, port: int) -> Iterator[str]:
    """`app` on `port`: the audience of Google's tokens names it, so it is chosen first."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_a_console_change_is_pushed_stored_and_sent_to_the_workers(stack, sandbox, database_url):
    # Given an instance subscribed for push to our endpoint
    endpoint = stack["url"] + "/google/events"
    subscription = push_to(sandbox, stack["notifying"], endpoint)
    instance_id = subscribed_instance(database_url, stack["distributor_id"], subscription)
    domain = f"acme-{uuid.uuid4().hex[:6]}.example"
    customer(sandbox, stack["notifying"], domain)
    # When the customer's admin raises the seats in the Admin console
    console(sandbox, domain, SKU, {"seats": 9})
    # Then Google's push is stored once, for that instance, and handed to a worker
    [event] = _wait(lambda: _events(database_url, instance_id))
    assert event.source == "push" and event.subscription == subscription
    assert event.customer_domain == domain and event.sku_id == SKU
    assert event.event_type == "LICENSE_CAP_CHANGED"
    assert _wait(lambda: stack["sent"]) == [event.id]


def test_a_push_delivered_twice_is_stored_once_and_processed_once(stack, sandbox, database_url):
    endpoint = stack["url"] + "/google/events"
    subscription = push_to(sandbox, stack["notifying"], endpoint)
    instance_id = subscribed_instance(database_url, stack["distributor_id"], subscription)
    domain = f"twice-{uuid.uuid4().hex[:6]}.example"
    customer(sandbox, stack["notifying"], domain)
    # Given Pub/Sub delivers the next message twice
    knobs(sandbox, subscription, duplicate=True)
    console(sandbox, domain, SKU, {"seats": 8})
    _wait(lambda: _events(database_url, instance_id))
    # Then, once the second delivery was answered (204: Pub/Sub stops), one row, one message
    _wait(lambda: _pushes_acknowledged(sandbox, subscription))
    events = _events(database_url, instance_id)
    assert len(events) == 1
    assert stack["sent"] == [events[0].id]


def _pushes_acknowledged(sandbox: str, subscription: str) -> bool:
    found = requests.get(f"{sandbox}/_sandbox/pubsub/subscriptions/{subscription}", timeout=10)
    return found.ok and not found.json().get("pending")


def test_a_push_with_another_audience_is_refused_and_stored_nowhere(stack, sandbox, database_url):
    # Given a subscription whose tokens name another endpoint as their audience
    endpoint = stack["url"] + "/google/events"
    subscription = push_to(
        sandbox, stack["notifying"], endpoint, audience="https://elsewhere.example/google/events"
    )
    subscribed_instance(database_url, stack["distributor_id"], subscription)
    domain = f"aud-{uuid.uuid4().hex[:6]}.example"
    customer(sandbox, stack["notifying"], domain)
    before = _count(database_url)
    console(sandbox, domain, SKU, {"seats": 7})
    # Then Pub/Sub keeps trying (we answer 403), and nothing is stored or sent
    time.sleep(1.5)
    assert _count(database_url) == before
    assert stack["sent"] == []


def _envelope(instance_subscription: str) -> dict[str, Any]:
    data = {"eventType": "LICENSE_CAP_CHANGED", "customerId": "C0forged", "skuId": SKU}
    return {
        "message": {
            "data": base64.b64encode(json.dumps(data).encode()).decode(),
            "messageId": f"forged-{uuid.uuid4().hex}",
            "publishTime": "2026-01-01T00:00:00Z",
            "attributes": {},
        },
        "subscription": instance_subscription,
    }


def _forged_token(stack: dict[str, Any]) -> str:
    """A token with every claim right, signed by a key that is not Google's."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {
        "iss": "https://accounts.google.com",
        "aud": stack["url"] + "/google/events",
        "email": stack["notifying"].email,
        "email_verified": True,
        "sub": "1234567890",
        "iat": now,
        "exp": now + 600,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "forged"})


@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, 401), ("Basic dXNlcjpwdw==", 401), ("Bearer not-a-jwt", 401), ("forged", None)],
)
def test_a_push_without_googles_token_is_refused_and_stored_nowhere(
    stack, database_url, authorization, status
):
    subscription = f"projects/p/subscriptions/forged-{uuid.uuid4().hex[:6]}"
    subscribed_instance(database_url, stack["distributor_id"], subscription)
    headers = {}
    if authorization == "forged":
        authorization = "Bearer " + _forged_token(stack)
    if authorization:
        headers["Authorization"] = authorization
    before = _count(database_url)
    resp = requests.post(
        stack["url"] + "/google/events", json=_envelope(subscription), headers=headers, timeout=10
    )
    assert resp.status_code in ((status,) if status else (401, 403)), resp.text
    error = resp.json()["error"]
    assert error["message"] and "forged" not in error["message"]  # no echo of what was sent
    assert _count(database_url) == before and stack["sent"] == []
