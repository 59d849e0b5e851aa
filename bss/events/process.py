"""Processing a stored notification in a worker: read what Google holds now for the customer,
apply it (mirror, desired state, drift, webhooks), and send billing's deliveries after commit.

An event older than what the mirror already reflects changes nothing. Google is read, never
changed. A transient failure leaves the event `received`: the scheduler sends it again."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from sqlmodel import select

from bss.crypto import Vault
from bss.db import session_scope
from bss.errors import (
    GoogleAuthorizationError,
    PermanentGoogleError,
    QuotaWait,
    TransientGoogleError,
)
from bss.events.apply import Applied, apply_subscription, busy_job, customer_state
from bss.gateway import Gateway, TokenCache, cached_credentials
from bss.models import (
    CustomerMirror,
    EventState,
    GoogleEvent,
    Instance,
    InstanceStatus,
    saved_id,
    utcnow,
)
from bss.settings import Settings

log = logging.getLogger(__name__)

# How long an event waits for a job of ours that is changing the same customer (its own
# change is then not mistaken for drift); after that it is compared anyway.
WAIT_FOR_JOB = timedelta(seconds=45)
WAIT_STEP_MS = 1000
PAGE = 100

Notify = Callable[[str], None]
Resend = Callable[[int, int], None]
LockFactory = Callable[[str], Any]


class EventProcessor:
    """Processes stored Google events by id; built once per worker process."""

    def __init__(
        self,
        *,
        settings: Settings,
        vault: Vault,
        notify: Notify | None = None,
        resend: Resend | None = None,
        token_cache: TokenCache | None = None,
        gateway_factory: Callable[..., Gateway] = Gateway,
        pacer_factory: Callable[[Instance], Any] | None = None,
        lock_factory: LockFactory | None = None,
    ) -> None:
        self.settings = settings
        self.vault = vault
        self.notify = notify or (lambda _delivery_id: None)
        self.resend = resend or (lambda _event_id, _delay_ms: None)
        self.token_cache = token_cache
        self.gateway_factory = gateway_factory
        self.pacer_factory = pacer_factory
        self.lock_factory = lock_factory or redis_locks(settings)

    def process(self, event_id: int) -> str | None:
        """Process event `event_id` if it is still `received`; the state it is left in."""
        with session_scope(self.settings.database_url) as s:
            event = s.get(GoogleEvent, event_id)
            if event is None or event.state != EventState.RECEIVED:
                return event.state if event else None
            instance = s.get(Instance, event.instance_id) if event.instance_id else None
            if instance is None or not event.customer_id:
                return self._mark(event_id, EventState.IGNORED, "About no instance of ours.")
        with self.lock_factory(f"{instance.id}:{event.customer_id}"):
            return self._process(event, instance)

    def _process(self, event: GoogleEvent, instance: Instance) -> str | None:
        assert event.id is not None and event.customer_id is not None
        with session_scope(self.settings.database_url) as s:
            mirror = s.exec(
                select(CustomerMirror).where(
                    CustomerMirror.instance_id == saved_id(instance),
                    CustomerMirror.customer_id == event.customer_id,
                )
            ).first()
            newest = mirror.last_event_time if mirror else None
            if newest and event.event_time and event.event_time < newest:
                return self._mark(
                    event.id,
                    EventState.IGNORED,
                    f"Older than the newest change already applied ({newest.isoformat()}).",
                )
            keys = {event.customer_id.lower()}
            keys |= {event.customer_domain.lower()} if event.customer_domain else set()
            job = busy_job(s, saved_id(instance), keys)
            if job is not None and utcnow() - event.received_at < WAIT_FOR_JOB:
                self.resend(event.id, WAIT_STEP_MS)
                return EventState.RECEIVED
            mirrored = [str(x.get("skuId")) for x in (mirror.subscriptions if mirror else [])]
        if instance.status in (InstanceStatus.NEEDS_REAUTH, InstanceStatus.DISABLED):
            self._note(event.id, f"Waits: instance {instance.name!r} is {instance.status}.")
            return EventState.RECEIVED
        try:
            customer, subs = self._read(instance, event.customer_id)
        except QuotaWait as exc:
            self._note(event.id, exc.message)
            self.resend(event.id, int(exc.seconds * 1000) + 100)
            return EventState.RECEIVED
        except (TransientGoogleError, GoogleAuthorizationError) as exc:
            self._note(event.id, f"Reading Google failed for now, retried later: {exc.message}")
            return EventState.RECEIVED
        except PermanentGoogleError as exc:
            return self._mark(event.id, EventState.FAILED, f"Google refused: {exc.message}")
        return self._apply(event, instance, customer, subs, mirrored)

    def _apply(
        self,
        event: GoogleEvent,
        instance: Instance,
        customer: dict[str, Any],
        subs: list[dict[str, Any]],
        mirrored: list[str],
    ) -> str:
        assert event.id is not None and event.customer_id is not None
        applied = Applied()
        by_sku = {str(x.get("skuId")): x for x in subs}
        skus = list(dict.fromkeys([*mirrored, *by_sku, *([event.sku_id] if event.sku_id else [])]))
        with session_scope(self.settings.database_url) as s:
            row = s.get(GoogleEvent, event.id)
            inst = s.get(Instance, instance.id)
            if row is None or inst is None or row.state != EventState.RECEIVED:
                return row.state if row else EventState.IGNORED
            drifts = []
            for sku in skus:
                drifts += apply_subscription(
                    s,
                    self.settings,
                    inst,
                    customer_id=event.customer_id,
                    sku_id=sku,
                    google_sub=by_sku.get(sku),
                    customer=customer,
                    detected_by="event",
                    event=row,
                    applied=applied,
                )
            s.flush()
            mirror = s.exec(
                select(CustomerMirror).where(
                    CustomerMirror.instance_id == saved_id(inst),
                    CustomerMirror.customer_id == event.customer_id,
                )
            ).first()
            when, last = row.event_time, mirror.last_event_time if mirror else None
            if mirror is not None and when is not None and (last is None or last < when):
                mirror.last_event_time = when
                s.add(mirror)
            opened = sum(1 for d in drifts if d.state == "open")
            row.state, row.processed_at = EventState.PROCESSED, utcnow()
            changed = len(applied.changes)
            row.note = (
                f"{changed} change{'' if changed == 1 else 's'} to the mirror; "
                f"{opened} open difference{'' if opened == 1 else 's'} from what billing ordered."
            )
            s.add(row)
        for delivery_id in applied.deliveries:
            self.notify(delivery_id)
        return EventState.PROCESSED

    def _read(self, instance: Instance, customer_id: str) -> tuple[dict, list[dict]]:
        """Google's customer (or what it refuses to show) and all its subscriptions."""
        gateway = self._gateway(instance)
        try:
            customer = gateway.get_or_none(
                "reseller.customers.get",
                lambda svc: svc.customers().get(customerId=customer_id),
            )
        except PermanentGoogleError as exc:
            if exc.status != 403:
                raise
            customer = {"customerId": customer_id, "_gone": "transferred_away"}
        if customer is None:
            customer = {"customerId": customer_id, "_gone": "deleted"}
        if customer_state(customer) != "active":
            return customer, []
        subs: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"customerId": customer_id, "maxResults": PAGE}
            if token:
                kwargs["pageToken"] = token
            try:
                page = gateway.call(
                    "reseller.subscriptions.list",
                    functools.partial(_list_page, kwargs=kwargs),
                )
            except PermanentGoogleError as exc:
                if exc.status not in (403, 404):
                    raise
                return {"customerId": customer_id, "_gone": "transferred_away"}, []
            subs += page.get("subscriptions") or []
            token = page.get("nextPageToken")
            if not token:
                return customer, subs

    def _gateway(self, instance: Instance) -> Gateway:
        creds = cached_credentials(
            instance, vault=self.vault, settings=self.settings, cache=self.token_cache
        )
        extra = {"pacer": self.pacer_factory(instance)} if self.pacer_factory else {}
        return self.gateway_factory(settings=self.settings, credentials=creds, **extra)

    def _mark(self, event_id: int, state: str, note: str) -> str:
        with session_scope(self.settings.database_url) as s:
            row = s.get(GoogleEvent, event_id)
            if row is not None:
                row.state, row.note, row.processed_at = state, note[:500], utcnow()
                s.add(row)
        return state

    def _note(self, event_id: int, note: str) -> None:
        with session_scope(self.settings.database_url) as s:
            row = s.get(GoogleEvent, event_id)
            if row is not None:
                row.note = note[:500]
                s.add(row)


def _list_page(service: Any, *, kwargs: dict[str, Any]) -> Any:
    return service.subscriptions().list(**kwargs)


def redis_locks(settings: Settings) -> LockFactory:
    """One event of a customer at a time across all workers (a Redis lock), so that two events
    processed at once cannot both tell billing of the same change; no Redis: none."""
    if not settings.redis_url:
        return lambda _key: contextlib.nullcontext()
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=5)

    @contextlib.contextmanager
    def lock(key: str) -> Iterator[None]:
        held = client.lock(f"bss:events:customer:{key}", timeout=120, blocking_timeout=60)
        got = held.acquire()
        try:
            yield
        finally:
            if got:
                with contextlib.suppress(Exception):
                    held.release()

    return lock
