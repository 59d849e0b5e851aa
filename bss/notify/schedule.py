"""The scheduler's share of e-mail: mail the alerts whose time has come (at once, then
reminders), the digests whose window ended, warn of refresh tokens about to expire, and send
again mail whose message was lost.

Several schedulers may run: an alert is claimed in the database before its mail is written (one
process wins), and a message sent twice to the workers is sent once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Generic, TypeVar

from sqlalchemy import update
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from bss.db import session_scope
from bss.models import (
    Alert,
    Instance,
    InstanceStatus,
    MailMessage,
    MailSender,
    NotifyTopic,
    SenderMode,
    SenderStatus,
    utcnow,
)
from bss.notify.alerts import DIGEST_LINES, DIGESTS, REMINDING, find_open, open_alert
from bss.notify.audiences import audiences
from bss.notify.compose import alert_mail, digest_mail, when
from bss.notify.conditions import (
    instance_label,
    sender_token_expiring_key,
    senders_path,
    token_expiring_key,
)
from bss.notify.outbox import queue_mail
from bss.notify.resend import lost_to_resend
from bss.settings import Settings

log = logging.getLogger(__name__)

Send = Callable[[str], None]
# Whoever holds a refresh token the scheduler watches: an instance, a mail sender.
Holder = TypeVar("Holder", Instance, MailSender)
# Alerts and digests mailed in one tick at most (the rest in the next).
BATCH = 200


@dataclass
class NotifyTick:
    """What one round did, for the log and the tests."""

    told: list[str] = field(default_factory=list)  # alerts and digests mailed (their ids)
    queued: list[str] = field(default_factory=list)  # mail written and sent to the workers
    warned: list[str] = field(default_factory=list)  # token-expiry alerts opened (their keys)
    resent: list[str] = field(default_factory=list)  # mail whose message was lost


def _claim(session: Session, alert: Alert, **values: object) -> bool:
    """Take the alert's turn (a conditional update: one scheduler wins)."""
    result = session.execute(
        update(Alert)
        .where(
            col(Alert.id) == alert.id,
            col(Alert.notified_count) == alert.notified_count,
            col(Alert.resolved_at).is_(None),
        )
        .values(notified_count=alert.notified_count + 1, **values)
    )
    return bool(getattr(result, "rowcount", 0))


def _queue(session: Session, alert: Alert, mail: Callable[..., tuple[str, str]]) -> list[str]:
    """One mail per audience of the alert (the distributor's, the platform's)."""
    ids = []
    for audience in audiences(session, topic=alert.topic, distributor_id=alert.distributor_id):
        subject, body = mail(
            audience="platform" if audience.distributor_id is None else "distributor"
        )
        message = queue_mail(
            session,
            distributor_id=audience.distributor_id,
            topic=alert.topic,
            recipients=audience.addresses,
            subject=subject,
            body=body,
            alert_id=alert.id,
        )
        ids.append(message.id)
    return ids


def _tell_alerts(settings: Settings, now: datetime, tick: NotifyTick) -> None:
    with session_scope(settings.database_url) as s:
        due = s.exec(
            select(Alert)
            .where(
                col(Alert.resolved_at).is_(None),
                col(Alert.next_notify_at).is_not(None),
                col(Alert.next_notify_at) <= now,
            )
            .order_by(col(Alert.next_notify_at))
            .limit(BATCH)
        ).all()
    for alert in due:
        with session_scope(settings.database_url) as s:
            oldest = find_open(s, alert.key)
            if oldest is not None and oldest.id != alert.id:
                # Opened twice at once (two transactions): the older one tells for both.
                if _claim(s, alert, resolved_at=now, next_notify_at=None):
                    oldest.count += alert.count
                    s.add(oldest)
                continue
            reminder = alert.notified_count > 0
            again = (
                now + timedelta(seconds=settings.alert_reminder_seconds)
                if alert.topic in REMINDING
                else None
            )
            if not _claim(s, alert, next_notify_at=again, last_notified_at=now):
                continue  # another scheduler told it
            current = s.get(Alert, alert.id)  # as claimed, with every sighting counted
            assert current is not None
            ids = _queue(s, current, partial(alert_mail, settings, current, reminder=reminder))
        tick.told.append(alert.id)
        tick.queued += ids


def _tell_digests(settings: Settings, now: datetime, tick: NotifyTick) -> None:
    window = timedelta(seconds=settings.failed_jobs_digest_seconds)
    with session_scope(settings.database_url) as s:
        due = s.exec(
            select(Alert)
            .where(
                col(Alert.topic).in_(list(DIGESTS)),
                col(Alert.resolved_at).is_(None),
                col(Alert.opened_at) <= now - window,
            )
            .order_by(col(Alert.opened_at))
            .limit(BATCH)
        ).all()
    for digest in due:
        with session_scope(settings.database_url) as s:
            if not _claim(s, digest, resolved_at=now, next_notify_at=None, last_notified_at=now):
                continue
            current = s.get(Alert, digest.id)  # closed now: nothing more is counted in it
            assert current is not None
            _absorb_twins(s, current, window, now)
            ids = _queue(
                s,
                current,
                partial(digest_mail, settings, current, window_seconds=window.total_seconds()),
            )
        tick.told.append(digest.id)
        tick.queued += ids


def _absorb_twins(session: Session, digest: Alert, window: timedelta, now: datetime) -> None:
    """Digests of the same key opened within this one's window (two transactions that each
    found none open) are told in this one."""
    twins = session.exec(
        select(Alert).where(
            Alert.key == digest.key,
            col(Alert.id) != digest.id,
            col(Alert.resolved_at).is_(None),
            col(Alert.opened_at) <= digest.opened_at + window,
        )
    ).all()
    lines = list((digest.details or {}).get("lines") or [])
    for twin in twins:
        digest.count += twin.count
        lines += list((twin.details or {}).get("lines") or [])
        twin.resolved_at, twin.next_notify_at = now, None
        session.add(twin)
    if twins:
        digest.details = {**(digest.details or {}), "lines": lines[:DIGEST_LINES]}
        session.add(digest)


@dataclass(frozen=True)
class _Expiring(Generic[Holder]):
    """One kind of refresh token the scheduler warns about, and the words of its alert."""

    rows: Callable[[datetime], SelectOfScalar[Holder]]  # whose token ends by then, and works
    key: Callable[[int | None], str]
    instance_id: Callable[[Holder], int | None]
    words: Callable[[Session, Holder], tuple[str, str, str]]  # title, what, todo
    path: Callable[[Holder], str]


def _instances_expiring(horizon: datetime) -> SelectOfScalar[Instance]:
    return select(Instance).where(
        Instance.status == InstanceStatus.AUTHENTICATED,
        col(Instance.refresh_token_expires_at).is_not(None),
        col(Instance.refresh_token_expires_at) <= horizon,
    )


def _instance_words(session: Session, instance: Instance) -> tuple[str, str, str]:
    label, ends = instance_label(session, instance), instance.refresh_token_expires_at
    return (
        f"The authorization of instance {label} ends {when(ends)}",
        f"Google said the refresh token of instance {label} stops working at "
        f"{when(ends)}. Its jobs will then wait for re-authentication.",
        "Click Authenticate Instance again before then. Tokens that end after 7 days "
        "come from an OAuth consent screen in Testing: publishing the app (In production) "
        "in the Google Cloud console ends that.",
    )


def _senders_expiring(horizon: datetime) -> SelectOfScalar[MailSender]:
    return select(MailSender).where(
        MailSender.mode == SenderMode.SMTP_XOAUTH2,
        MailSender.status == SenderStatus.OK,
        col(MailSender.refresh_token_expires_at).is_not(None),
        col(MailSender.refresh_token_expires_at) <= horizon,
    )


def _sender_words(_session: Session, sender: MailSender) -> tuple[str, str, str]:
    ends = sender.refresh_token_expires_at
    return (
        f"The authorization of mail sender {sender.name} ends {when(ends)}",
        f"Google said the mailbox {sender.from_address} of mail sender "
        f"{sender.name} can be used until {when(ends)}.",
        "Click Authenticate mailbox again before then.",
    )


EXPIRING: tuple[_Expiring[Any], ...] = (
    _Expiring[Instance](
        rows=_instances_expiring,
        key=token_expiring_key,
        instance_id=lambda instance: instance.id,
        words=_instance_words,
        path=lambda instance: f"/portal/instances/{instance.id}",
    ),
    _Expiring[MailSender](
        rows=_senders_expiring,
        key=sender_token_expiring_key,
        instance_id=lambda sender: sender.instance_id,
        words=_sender_words,
        path=senders_path,
    ),
)


def _warn_expiring(settings: Settings, now: datetime, tick: NotifyTick) -> None:
    """Refresh tokens Google gave a lifetime (a consent screen in Testing: 7 days) that end
    within BSS_TOKEN_EXPIRY_WARNING_SECONDS: warned once, until a new consent."""
    if settings.token_expiry_warning_seconds <= 0:
        return
    horizon = now + timedelta(seconds=settings.token_expiry_warning_seconds)
    with session_scope(settings.database_url) as s:
        for kind in EXPIRING:
            for holder in s.exec(kind.rows(horizon)).all():
                key = kind.key(holder.id)
                if find_open(s, key) is not None:
                    continue
                title, what, todo = kind.words(s, holder)
                open_alert(
                    s,
                    key=key,
                    topic=NotifyTopic.INSTANCE_TOKEN_EXPIRING,
                    distributor_id=holder.distributor_id,
                    instance_id=kind.instance_id(holder),
                    title=title,
                    details={"what": what, "todo": todo, "path": kind.path(holder)},
                )
                tick.warned.append(key)


def resend_lost(settings: Settings, send: Send, now: datetime, *, limit: int = 500) -> list[str]:
    """Send again pending mail whose message is overdue (lost with Redis, or a dead worker)."""
    with session_scope(settings.database_url) as s:
        ids = lost_to_resend(
            s,
            MailMessage,
            sent_at="enqueued_at",
            now=now,
            resend_after_seconds=settings.resend_after_seconds,
            limit=limit,
        )
    for message_id in ids:  # after commit: a worker finds the row as re-sent
        send(message_id)
    return ids


def notify_due(settings: Settings, send: Send, *, now: datetime | None = None) -> NotifyTick:
    """One round: warn of expiring tokens, mail due alerts and ended digests, then hand the
    new mail (and any lost) to the workers."""
    now = now or utcnow()
    tick = NotifyTick()
    _warn_expiring(settings, now, tick)
    # The warnings just opened are due at once too.
    _tell_alerts(settings, max(now, utcnow()), tick)
    _tell_digests(settings, now, tick)
    for message_id in tick.queued:
        send(message_id)
    tick.resent = resend_lost(settings, send, now)
    if tick.told or tick.resent:
        log.info(
            "notifications: %d alert(s) told in %d mail(s), %d mail(s) sent again",
            len(tick.told),
            len(tick.queued),
            len(tick.resent),
        )
    return tick


def tick_seconds(settings: Settings) -> float:
    """How often the scheduler looks: every few seconds, more often with short intervals."""
    shortest = min(settings.alert_reminder_seconds, settings.failed_jobs_digest_seconds) / 4
    return max(0.5, min(5.0, shortest))


def notify_forever(settings: Settings, send: Send, stop: threading.Event) -> None:
    """Run `notify_due` every few seconds until `stop` is set (a thread of `bss scheduler`)."""
    every = tick_seconds(settings)
    while not stop.is_set():
        try:
            notify_due(settings, send)
        except Exception:  # the scheduler must outlive a database or broker hiccup
            log.exception("notifications round failed; trying again shortly")
        stop.wait(every)
