"""Webhooks go to public internet addresses only: refused when saved, refused again at delivery
(after DNS, whatever it answers then), and the POST goes to the address that was checked."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pydantic
import pytest
from sqlmodel import col, select

from bss.crypto import vault_from_settings
from bss.db import session_scope
from bss.errors import ValidationFailed
from bss.models import DeliveryState, Distributor, JobEvent, WebhookDelivery
from bss.notify import configure_webhook, deliver, record_event
from bss.settings import Settings
from tests.support.samples import submit

PUBLIC_IP = "93.184.215.14"
HOOKS = "hooks.billing.example"


def public_dns(host: str) -> list[str]:
    return [PUBLIC_IP]


def rebinding_dns(host: str) -> list[str]:
    """A hostile DNS server: the name now answers with this machine's address."""
    return ["127.0.0.1"]


def no_dns(host: str) -> list[str]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


class Receiver:
    """A billing endpoint on this machine: records each request, answers `status` (+ headers)."""

    def __init__(self, status: int = 204, headers: dict[str, str] | None = None, body=b""):
        self.requests: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", 0))
                receiver.requests.append(
                    {
                        "path": self.path,
                        "host": self.headers["Host"],
                        "body": self.rfile.read(length),
                    }
                )
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST  # noqa: N815 (a followed redirect would GET)

            def log_message(self, *_args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def local_network(settings: Settings) -> Settings:
    """Settings of an operator who lets webhooks reach this machine (as the demo does)."""
    return settings.model_copy(update={"webhook_allowed_networks": "127.0.0.0/8"})


def set_hook(settings, tenant, url, *, resolve=public_dns, secret=None) -> str | None:
    """Configure the tenant's webhook; `resolve=None` uses the system's resolver."""
    with session_scope(settings.database_url) as s:
        return configure_webhook(
            s,
            settings=settings,
            distributor=s.get(Distributor, tenant.id),
            vault=vault_from_settings(settings),
            url=url,
            secret=secret,
            **({"resolve": resolve} if resolve else {}),
        )


def stored_hook(settings, tenant) -> tuple[str | None, str | None]:
    with session_scope(settings.database_url) as s:
        d = s.get(Distributor, tenant.id)
        secret = vault_from_settings(settings).decrypt(d.webhook_secret_enc)
        return d.webhook_url, secret


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254, a link-local address (where cloud metadata services answer)",
        ),
        ("http://[::1]:22/", "::1, this machine itself (loopback)"),
        ("http://10.0.0.1/", "10.0.0.1, a private network address"),
        ("http://127.0.0.1:6390/", "127.0.0.1, this machine itself (loopback)"),
        ("http://[::ffff:127.0.0.1]:8000/", "::ffff:127.0.0.1, this machine itself (loopback)"),
        ("http://0.0.0.0:8000/", "0.0.0.0, an unspecified address"),
        ("http://224.0.0.251/", "224.0.0.251, a multicast address"),
        ("http://100.64.0.1/", "100.64.0.1, an address that is not public"),
        ("http://[fd00::1]/", "fd00::1, a private network address"),
        ("http://[2002:7f00:1::]/", "2002:7f00:1::, this machine itself (loopback)"),  # 6to4
    ],
)
def test_a_local_or_private_address_is_refused_when_saved_and_nothing_changes(
    settings, tenant, url, shown
):
    # Given the distributor's webhook goes to billing
    set_hook(settings, tenant, f"https://{HOOKS}/bss", secret="whsec_" + "a" * 20)
    # When its admin points the webhook at an address of the platform's own network
    with pytest.raises(ValidationFailed) as err:
        set_hook(settings, tenant, url, secret="whsec_" + "b" * 20)
    # Then it is refused, saying which address and why
    assert err.value.details == [
        {
            "field": "url",
            "problem": f"points at {shown}; webhooks must go to a public internet address",
        }
    ]
    # And the webhook is as it was
    assert stored_hook(settings, tenant) == (f"https://{HOOKS}/bss", "whsec_" + "a" * 20)


@pytest.mark.parametrize("url", ["http://localhost:6390/", "http://2130706433/", "http://0x7f.1/"])
def test_names_and_numbers_the_resolver_reads_as_this_machine_are_refused(settings, tenant, url):
    # Given the system's own resolver (no network: /etc/hosts, and inet_aton's number forms)
    with pytest.raises(ValidationFailed) as err:
        set_hook(settings, tenant, url, resolve=None)
    [problem] = err.value.details
    assert "resolves to a private or local network address" in problem["problem"]
    with session_scope(settings.database_url) as s:
        assert s.get(Distributor, tenant.id).webhook_url is None


def test_a_name_with_any_private_address_is_refused_without_telling_which(settings, tenant):
    def split_horizon(host):
        return [PUBLIC_IP, "10.20.30.40"]

    with pytest.raises(ValidationFailed) as err:
        set_hook(settings, tenant, f"https://{HOOKS}/bss", resolve=split_horizon)
    [problem] = err.value.details
    assert problem["problem"] == (
        f"names {HOOKS}, which resolves to a private or local network address; "
        "webhooks must go to a public internet address"
    )
    assert "10.20.30.40" not in problem["problem"]


def test_a_name_that_does_not_resolve_yet_is_accepted(settings, tenant):
    # Billing may set up its DNS after the webhook; each delivery checks again.
    assert set_hook(settings, tenant, f"https://{HOOKS}/bss", resolve=no_dns)
    assert stored_hook(settings, tenant)[0] == f"https://{HOOKS}/bss"


def test_the_operator_may_allow_a_network(local_network, tenant):
    assert set_hook(local_network, tenant, "http://127.0.0.1:9/hooks")
    assert set_hook(local_network, tenant, "http://localhost:9/hooks", resolve=rebinding_dns)
    with pytest.raises(ValidationFailed):  # outside the allowed networks
        set_hook(local_network, tenant, "http://10.0.0.1/hooks")


def test_a_bad_allowed_network_stops_the_settings():
    with pytest.raises(pydantic.ValidationError, match="BSS_WEBHOOK_ALLOWED_NETWORKS"):
        Settings(BSS_WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8, 10.0.0.0/33")


# At delivery


def queue_event(settings, tenant) -> tuple[str, str]:
    job_id = submit(settings, tenant)
    with session_scope(settings.database_url) as s:
        delivery = record_event(
            s, distributor_id=tenant.id, event="job.succeeded", data={"x": 1}, job_id=job_id
        )
        return delivery.id, job_id


def timeline(settings, job_id) -> list[str]:
    with session_scope(settings.database_url) as s:
        events = s.exec(
            select(JobEvent).where(JobEvent.job_id == job_id).order_by(col(JobEvent.id))
        ).all()
        return [e.message for e in events if e.kind == "webhook"]


def test_a_name_that_rebinds_to_this_machine_is_refused_at_delivery_and_not_retried(
    settings, tenant
):
    # Given a webhook saved while its name answered with a public address
    set_hook(settings, tenant, f"https://{HOOKS}/bss")
    delivery_id, job_id = queue_event(settings, tenant)
    posted, resent = [], []
    # When the name answers with 127.0.0.1 at delivery time
    state = deliver(
        settings,
        vault_from_settings(settings),
        delivery_id,
        resend=lambda d, ms: resent.append(ms),
        post=lambda *a, **k: posted.append(a),
        resolve=rebinding_dns,
    )
    # Then nothing is sent, the delivery fails at once, and the timeline says why
    assert state == DeliveryState.FAILED and posted == [] and resent == []
    with session_scope(settings.database_url) as s:
        delivery = s.get(WebhookDelivery, delivery_id)
        assert delivery.attempts == 1 and delivery.last_status is None
        assert delivery.last_error == (
            f"Not sent: the webhook URL names {HOOKS}, which resolves to a private or local "
            "network address; webhooks must go to a public internet address."
        )
    assert timeline(settings, job_id)[-1].startswith("Webhook job.succeeded failed, not retried")


def test_a_long_error_is_cut_to_fit(settings, tenant):
    host = ".".join(["a" * 60] * 7) + ".example"  # the error names it
    set_hook(settings, tenant, f"https://{host}/bss")
    delivery_id, _ = queue_event(settings, tenant)
    deliver(
        settings,
        vault_from_settings(settings),
        delivery_id,
        resend=lambda d, ms: None,
        resolve=rebinding_dns,
    )
    with session_scope(settings.database_url) as s:
        error = s.get(WebhookDelivery, delivery_id).last_error
    assert len(error) == 300 and error.endswith("…")


def test_a_name_that_does_not_resolve_at_delivery_is_retried(settings, tenant):
    set_hook(settings, tenant, f"https://{HOOKS}/bss")
    delivery_id, _ = queue_event(settings, tenant)
    resent = []
    state = deliver(
        settings,
        vault_from_settings(settings),
        delivery_id,
        resend=lambda d, ms: resent.append(ms),
        resolve=no_dns,
    )
    assert state == DeliveryState.PENDING and len(resent) == 1
    with session_scope(settings.database_url) as s:
        assert "does not resolve" in s.get(WebhookDelivery, delivery_id).last_error


@pytest.fixture
def receiver_factory() -> Iterator[Any]:
    started: list[Receiver] = []

    def start(**kwargs: Any) -> Receiver:
        started.append(Receiver(**kwargs))
        return started[-1]

    yield start
    for r in started:
        r.close()


def test_the_post_goes_to_the_checked_address_and_names_the_host(
    local_network, tenant, receiver_factory
):
    # Given billing's name resolves (once) to a receiver inside the allowed networks
    receiver = receiver_factory()
    set_hook(local_network, tenant, f"http://{HOOKS}:{receiver.port}/bss", resolve=rebinding_dns)
    delivery_id, _ = queue_event(local_network, tenant)
    # When the event is delivered by the real transport (no DNS knows hooks.billing.example)
    state = deliver(
        local_network,
        vault_from_settings(local_network),
        delivery_id,
        resend=lambda d, ms: None,
        resolve=rebinding_dns,
    )
    # Then it reached the checked address, with the URL's host in the Host header
    assert state == DeliveryState.DELIVERED
    [request] = receiver.requests
    assert request["host"] == f"{HOOKS}:{receiver.port}" and request["path"] == "/bss"


def test_a_redirect_is_not_followed_and_the_receivers_body_is_not_kept(
    local_network, tenant, receiver_factory
):
    # Given billing answers with a redirect to another address, and a page of its own
    receiver = receiver_factory(
        status=307,
        headers={"Location": "http://169.254.169.254/latest/meta-data/"},
        body=b"internal details " * 100,
    )
    set_hook(local_network, tenant, f"http://127.0.0.1:{receiver.port}/bss")
    delivery_id, job_id = queue_event(local_network, tenant)
    resent = []
    state = deliver(
        local_network,
        vault_from_settings(local_network),
        delivery_id,
        resend=lambda d, ms: resent.append(ms),
    )
    # Then the redirect is a failed attempt (retried later), and went nowhere
    assert state == DeliveryState.PENDING and len(resent) == 1
    assert [r["path"] for r in receiver.requests] == ["/bss"]
    with session_scope(local_network.database_url) as s:
        delivery = s.get(WebhookDelivery, delivery_id)
        assert delivery.last_status == 307
        assert "redirect, which is not followed" in delivery.last_error
        assert "internal details" not in delivery.last_error
    assert not any("internal details" in line for line in timeline(local_network, job_id))
