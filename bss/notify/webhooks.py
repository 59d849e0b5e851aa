"""Webhooks to billing: signed events about jobs and instances, delivered with retries.

Each event is a `WebhookDelivery` row written in the same transaction as the change it reports;
its message is sent after commit, and the scheduler re-sends it if the message is lost. Every
delivery attempt is recorded on the delivery and, for job events, on the job's timeline. Only
public internet addresses (or networks the operator allows) are sent to: see `destinations`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlmodel import Session, col, select

from bss.crypto import Vault
from bss.db import session_scope
from bss.errors import ValidationFailed
from bss.models import DeliveryState, Distributor, WebhookDelivery, add_event, iso, utcnow
from bss.notify.conditions import webhook_delivered, webhook_failed
from bss.notify.destinations import (
    RefusedDestination,
    Resolver,
    UnresolvedDestination,
    allowed_networks,
    check_destination,
    system_resolver,
)
from bss.notify.pinning import post_pinned
from bss.settings import Settings

log = logging.getLogger(__name__)

EVENTS = (
    "job.succeeded",
    "job.failed",
    "job.waiting_reauth",
    "instance.needs_reauth",
    # What Google told us changed (bss.events)
    "subscription.changed",
    "subscription.drifted",
    "subscription.renewed",
    "subscription.suspended",
    "customer.transferred_away",
)
SIGNATURE_HEADER = "X-BSS-Signature"
TIMESTAMP_HEADER = "X-BSS-Timestamp"
EVENT_HEADER = "X-BSS-Event"
DELIVERY_HEADER = "X-BSS-Delivery"

# Sends a delivery's message, after an optional delay in milliseconds.
SendDelivery = Callable[[str, int | None], None]
# POSTs to a URL connected to a checked `address=` (post_pinned; a fake one in tests).
PostTo = Callable[..., requests.Response]
# How much of an error message a delivery and the timeline keep.
MAX_ERROR_CHARS = 300


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 (hex) of `timestamp + "." + body` under the distributor's webhook secret."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return mac.hexdigest()


def verify(secret: str, headers: dict[str, str], body: bytes, *, tolerance: float = 300) -> bool:
    """What a receiver does: recompute the signature and check the timestamp is recent."""
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    signature = lowered.get(SIGNATURE_HEADER.lower(), "").removeprefix("sha256=")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def configure_webhook(
    session: Session,
    *,
    settings: Settings,
    distributor: Distributor,
    vault: Vault,
    url: str | None,
    secret: str | None = None,
    resolve: Resolver = system_resolver,
) -> str | None:
    """Set (or, with url None, remove) the distributor's webhook; returns the secret, shown once.

    Without `secret` a new random one is generated. It is stored encrypted. A URL whose host is,
    or resolves to, a private or local address is refused; a name that does not resolve yet is
    accepted (each delivery checks again, and says so on the timeline).
    """
    if not url:
        distributor.webhook_url = distributor.webhook_secret_enc = None
        session.add(distributor)
        return None
    problems = []
    if problem := _url_problem(url, settings, resolve):
        problems.append({"field": "url", "problem": problem})
    if secret is not None and len(secret) < 16:
        problems.append({"field": "secret", "problem": "must be at least 16 characters"})
    if problems:
        raise ValidationFailed("The webhook is invalid.", details=problems)
    secret = secret or "whsec_" + secrets.token_urlsafe(32)
    distributor.webhook_url = url
    distributor.webhook_secret_enc = vault.encrypt(secret)
    session.add(distributor)
    return secret


def _url_problem(url: str, settings: Settings, resolve: Resolver) -> str | None:
    try:
        parts = urlsplit(url)
        absolute = parts.scheme in ("https", "http") and bool(parts.hostname)
        _ = parts.port  # a port out of range raises ValueError
    except ValueError:
        absolute = False
    if not absolute:
        return "must be an absolute http(s) URL"
    if len(url) > 2000:
        return "must be at most 2000 characters"
    networks = allowed_networks(settings.webhook_allowed_networks)
    try:
        check_destination(url, allowed=networks, resolve=resolve)
    except RefusedDestination as exc:
        return exc.message
    except UnresolvedDestination:
        pass  # DNS may be set up after the webhook: each delivery checks again
    return None


def record_event(
    session: Session,
    *,
    distributor_id: int,
    event: str,
    data: dict[str, Any],
    job_id: str | None = None,
    instance_id: int | None = None,
) -> WebhookDelivery | None:
    """Write an event for the distributor's webhook (None when it has none); send after commit."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    distributor = session.get(Distributor, distributor_id)
    if distributor is None or not distributor.webhook_url:
        return None
    delivery = WebhookDelivery(
        distributor_id=distributor_id, job_id=job_id, instance_id=instance_id, event=event
    )
    delivery.payload = {
        "id": delivery.id,
        "event": event,
        "created_at": iso(delivery.created_at),
        "data": data,
    }
    session.add(delivery)
    if job_id:
        add_event(session, job_id, "webhook", f"Webhook {event} queued", delivery=delivery.id)
    return delivery


def retry_delay(attempts: int, *, base: float, maximum: float) -> float:
    """Exponential backoff with jitter: between half and all of base * 2^(attempts - 1), at most
    `maximum` (webhook deliveries and e-mail alike)."""
    cap = min(maximum, base * 2 ** max(attempts - 1, 0))
    return random.uniform(cap / 2, cap)


def backoff(settings: Settings, attempts: int) -> float:
    """Exponential backoff with jitter between webhook attempts."""
    return retry_delay(
        attempts,
        base=settings.webhook_retry_base_seconds,
        maximum=settings.webhook_retry_max_seconds,
    )


def deliver(
    settings: Settings,
    vault: Vault,
    delivery_id: str,
    *,
    resend: SendDelivery,
    post: PostTo = post_pinned,
    resolve: Resolver = system_resolver,
) -> str | None:
    """One delivery attempt: POST the signed event; on failure schedule the next attempt.

    The URL's host is resolved once and every address checked; the POST goes to the checked
    address. A URL that reaches a private or local address fails at once, without retries.
    Returns the delivery's state afterwards (None if it is unknown or already finished).
    """
    with session_scope(settings.database_url) as s:
        delivery = s.get(WebhookDelivery, delivery_id)
        if delivery is None or delivery.state != DeliveryState.PENDING:
            return None
        if delivery.next_attempt_at and delivery.next_attempt_at > utcnow() + timedelta(seconds=1):
            return None  # an early duplicate message: the delayed one will come
        distributor = s.get(Distributor, delivery.distributor_id)
        url = distributor.webhook_url if distributor else None
        secret_enc = distributor.webhook_secret_enc if distributor else None
        payload, event = delivery.payload, delivery.event
    status: int | None = None
    error: str | None = None
    permanent = False
    started = time.monotonic()
    if not url or not secret_enc:
        error = "The distributor has no webhook configured any more."
    else:
        try:
            destination = check_destination(
                url, allowed=allowed_networks(settings.webhook_allowed_networks), resolve=resolve
            )
        except RefusedDestination as exc:
            error, permanent = f"Not sent: the webhook URL {exc.message}.", True
        except UnresolvedDestination as exc:
            error = f"Could not reach the receiver: {exc.message}."
        else:
            body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "bss-webhooks/1",
                EVENT_HEADER: event,
                DELIVERY_HEADER: delivery_id,
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: "sha256=" + sign(vault.decrypt(secret_enc), timestamp, body),
            }
            status, error = _post(settings, post, url, destination.addresses[0], body, headers)
    duration_ms = int((time.monotonic() - started) * 1000)
    return _record_attempt(settings, delivery_id, status, error, duration_ms, resend, permanent)


def _post(
    settings: Settings,
    post: PostTo,
    url: str,
    address: str,
    body: bytes,
    headers: dict[str, str],
) -> tuple[int | None, str | None]:
    """The receiver's status and what went wrong, if anything (never its body)."""
    try:
        resp = post(
            url,
            address=address,
            data=body,
            headers=headers,
            timeout=settings.webhook_timeout_seconds,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        return None, f"Could not reach the receiver ({type(exc).__name__})."
    status = resp.status_code
    if 300 <= status < 400:
        return status, (
            f"The receiver answered HTTP {status}, a redirect, which is not followed: "
            "set the webhook to the final URL."
        )
    if not 200 <= status < 300:
        return status, f"The receiver answered HTTP {status}."
    return status, None


def _record_attempt(
    settings: Settings,
    delivery_id: str,
    status: int | None,
    error: str | None,
    duration_ms: int,
    resend: SendDelivery,
    permanent: bool = False,
) -> str:
    now = utcnow()
    delay: float | None = None
    if error is not None and len(error) > MAX_ERROR_CHARS:
        error = error[: MAX_ERROR_CHARS - 1] + "…"
    with session_scope(settings.database_url) as s:
        delivery = s.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        delivery.attempts += 1
        delivery.last_status, delivery.last_error = status, error
        delivery.updated_at = now
        if error is None:
            delivery.state, delivery.delivered_at, delivery.next_attempt_at = (
                DeliveryState.DELIVERED,
                now,
                None,
            )
            message = f"Webhook {delivery.event} delivered (HTTP {status})"
        elif permanent:
            delivery.state, delivery.next_attempt_at = DeliveryState.FAILED, None
            message = f"Webhook {delivery.event} failed, not retried: {error}"
        elif delivery.attempts >= settings.webhook_max_attempts:
            delivery.state, delivery.next_attempt_at = DeliveryState.FAILED, None
            message = (
                f"Webhook {delivery.event} given up after {delivery.attempts} attempts: {error}"
            )
        else:
            delay = backoff(settings, delivery.attempts)
            delivery.next_attempt_at = now + timedelta(seconds=delay)
            delivery.enqueued_at = now
            message = f"Webhook {delivery.event} attempt failed, retry in {delay:.0f}s: {error}"
        s.add(delivery)
        # Failing deliveries are an alert (mailed, reminded); the next one delivered closes it.
        if delivery.state == DeliveryState.FAILED:
            webhook_failed(s, delivery)
        elif delivery.state == DeliveryState.DELIVERED:
            webhook_delivered(s, delivery.distributor_id)
        if delivery.job_id:
            add_event(
                s,
                delivery.job_id,
                "webhook",
                message,
                delivery=delivery.id,
                event=delivery.event,
                attempt=delivery.attempts,
                status=status,
                duration_ms=duration_ms,
                next_attempt_at=iso(delivery.next_attempt_at),
            )
        state = delivery.state
    log.info("webhook %s: %s", delivery_id, message)
    if delay is not None:
        resend(delivery_id, int(delay * 1000))
    return state


def recent_deliveries(
    session: Session, *, distributor_id: int, limit: int = 50
) -> list[WebhookDelivery]:
    """The distributor's latest webhook deliveries, newest first (for the portal)."""
    return list(
        session.exec(
            select(WebhookDelivery)
            .where(WebhookDelivery.distributor_id == distributor_id)
            .order_by(col(WebhookDelivery.created_at).desc())
            .limit(limit)
        ).all()
    )
