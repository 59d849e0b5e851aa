"""Alerts: a condition people are told about once, reminded of while it lasts, and that closes
when it clears; and digests, which count a storm of events and are told once at the end.

Both are rows written in the transaction that saw the condition; the scheduler mails them
(`bss.notify.schedule`). One open alert per key: a second sighting while it is open only counts,
so that 50 jobs failing on one dead grant make one mail, not 50.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from bss.models import Alert, NotifyTopic, utcnow

# Conditions that last until someone acts: reminded every BSS_ALERT_REMINDER_SECONDS.
REMINDING = frozenset(
    {NotifyTopic.INSTANCE_NEEDS_REAUTH, NotifyTopic.SENDER_FAILING, NotifyTopic.WEBHOOKS_FAILING}
)
# Events counted over a window (BSS_FAILED_JOBS_DIGEST_SECONDS) and told once at its end.
DIGESTS = frozenset({NotifyTopic.JOBS_FAILED, NotifyTopic.DRIFT_FOUND})
# How many of a digest's events its mail lists one by one (the rest are counted).
DIGEST_LINES = 20
MAX_TITLE_CHARS = 300
MAX_LINE_CHARS = 300


def find_open(session: Session, key: str) -> Alert | None:
    """The open alert of `key` (the oldest, should two have been opened at once)."""
    return session.exec(
        select(Alert)
        .where(Alert.key == key, col(Alert.resolved_at).is_(None))
        .order_by(col(Alert.opened_at))
    ).first()


def _count_once_more(session: Session, alert: Alert) -> None:
    # In SQL, so that two transactions counting at once both count.
    session.execute(
        update(Alert).where(col(Alert.id) == alert.id).values(count=col(Alert.count) + 1)
    )
    session.expire(alert, ["count"])


def open_alert(
    session: Session,
    *,
    key: str,
    topic: str,
    distributor_id: int | None,
    instance_id: int | None = None,
    title: str,
    details: dict[str, Any],
) -> Alert:
    """Open the alert of `key`, to be mailed at once; while one is open, only count it again.

    `details` are what the mail shows (`what`, `todo`, `path` of the link, `facts`), never a
    secret. The caller commits.
    """
    alert = find_open(session, key)
    if alert is not None:
        _count_once_more(session, alert)
        return alert
    alert = Alert(
        key=key,
        topic=topic,
        distributor_id=distributor_id,
        instance_id=instance_id,
        title=title[:MAX_TITLE_CHARS],
        details=details,
        next_notify_at=utcnow(),
    )
    session.add(alert)
    return alert


def is_open(session: Session, key: str) -> bool:
    """Whether an alert of `key` is open."""
    return find_open(session, key) is not None


def resolve_alert(session: Session, key: str) -> int:
    """Close the open alert of `key` (no more reminders); how many were open. The caller
    commits."""
    now = utcnow()
    alerts = session.exec(
        select(Alert).where(Alert.key == key, col(Alert.resolved_at).is_(None))
    ).all()
    for alert in alerts:
        alert.resolved_at, alert.next_notify_at = now, None
        session.add(alert)
    return len(alerts)


def digest_key(topic: str, distributor_id: int | None) -> str:
    """The key of a distributor's (or the platform's) open digest of `topic`."""
    return f"{topic}:{distributor_id if distributor_id is not None else 'platform'}"


def add_to_digest(
    session: Session, *, topic: str, distributor_id: int | None, title: str, line: str
) -> Alert:
    """Count one event in the open digest of (topic, distributor), opening one if none is: it
    is mailed when its window ends, listing the first DIGEST_LINES lines and the count. In the
    caller's transaction (a failed job is counted with its failure)."""
    if topic not in DIGESTS:
        raise ValueError(f"{topic!r} is not told in digests")
    line = line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 1] + "…"
    key = digest_key(topic, distributor_id)
    digest = find_open(session, key)
    if digest is None:
        digest = Alert(
            key=key,
            topic=topic,
            distributor_id=distributor_id,
            title=title[:MAX_TITLE_CHARS],
            details={"lines": [line]},
            # The scheduler mails it when its window ends (it knows the window's length).
            next_notify_at=None,
        )
        session.add(digest)
        return digest
    _count_once_more(session, digest)
    lines = list((digest.details or {}).get("lines") or [])
    if len(lines) < DIGEST_LINES:
        digest.details = {**(digest.details or {}), "lines": [*lines, line]}
        session.add(digest)
    return digest
