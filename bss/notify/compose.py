"""The words of a notification: a plain-text mail saying what happened, since when, what to do,
and where to look. Built from an alert's title and details, which never hold a secret."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from bss.models import Alert, NotifyTopic
from bss.notify.alerts import DIGEST_LINES
from bss.notify.recipients import TOPIC_LABELS
from bss.settings import Settings

SUBJECT_PREFIX = "[BSS]"
MAX_SUBJECT_CHARS = 300
# Where recipients change what they get: the distributor's page, and the operators'.
SETTINGS_PATHS = {"distributor": "/portal/notifications", "platform": "/dashboard/mail"}
DIGEST_NOUNS = {
    NotifyTopic.JOBS_FAILED: ("job failed", "jobs failed"),
    NotifyTopic.DRIFT_FOUND: ("difference", "differences"),
}
DIGEST_TODO = {
    NotifyTopic.JOBS_FAILED: "Each job's timeline says what Google answered and what to do; "
    "retry the ones worth retrying from the dashboard.",
    NotifyTopic.DRIFT_FOUND: "Accept Google's value, or restore billing's with a job, on the "
    "dashboard's Drift page.",
}


def when(moment: datetime | None) -> str:
    """A moment as people read it in a mail: 2026-11-28 18:04 UTC."""
    if moment is None:
        return "unknown"
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def link(settings: Settings, path: str | None) -> str | None:
    """The absolute address of a page of ours (the first public base URL)."""
    if not path:
        return None
    base = settings.base_urls[0] if settings.base_urls else ""
    return base + path


def _subject(text: str) -> str:
    subject = f"{SUBJECT_PREFIX} {' '.join(text.split())}"
    return subject if len(subject) <= MAX_SUBJECT_CHARS else subject[: MAX_SUBJECT_CHARS - 1] + "…"


def _footer(settings: Settings, topic: str, audience: str) -> list[str]:
    where = link(settings, SETTINGS_PATHS[audience])
    labels = {str(t): label for t, label in TOPIC_LABELS.items()}
    return [
        "--",
        f"You receive this as a recipient of: {labels.get(topic, topic)}.",
        f"Change what you receive: {where}",
    ]


def _facts(details: dict[str, Any]) -> list[str]:
    facts = details.get("facts") or {}
    return [f"{label}: {value}" for label, value in facts.items() if value not in (None, "")]


def alert_mail(
    settings: Settings, alert: Alert, *, reminder: bool, audience: str = "distributor"
) -> tuple[str, str]:
    """The subject and body of an alert's mail (or of a reminder of it)."""
    details = alert.details or {}
    subject = _subject(f"Reminder: {alert.title}" if reminder else alert.title)
    seen = f" (seen {alert.count} times)" if alert.count > 1 else ""
    lines = [str(details.get("what") or alert.title), ""]
    lines.append(f"Since: {when(alert.opened_at)}{seen}")
    lines += _facts(details)
    if todo := details.get("todo"):
        lines += ["", f"What to do: {todo}"]
    if target := link(settings, details.get("path")):
        lines += ["", f"Open: {target}"]
    if reminder:
        lines += [
            "",
            "This is a reminder: the condition is still there. Reminders stop once it is fixed.",
        ]
    lines += ["", *_footer(settings, alert.topic, audience)]
    return subject, "\n".join(lines) + "\n"


def digest_mail(
    settings: Settings, alert: Alert, *, window_seconds: float, audience: str = "distributor"
) -> tuple[str, str]:
    """The subject and body of a digest: how many, over which window, the first lines."""
    details = alert.details or {}
    one, many = DIGEST_NOUNS.get(NotifyTopic(alert.topic), ("event", "events"))
    noun = one if alert.count == 1 else many
    start = alert.opened_at
    end = start + timedelta(seconds=window_seconds)
    subject = _subject(f"{alert.title}: {alert.count}")
    lines = [
        f"{alert.count} {noun} between {when(start)} and {when(end)}.",
        "",
    ]
    listed = list(details.get("lines") or [])[:DIGEST_LINES]
    if listed:
        lines.append("The first ones:" if alert.count > len(listed) else "All of them:")
        lines += [f"  - {line}" for line in listed]
        if alert.count > len(listed):
            lines.append(f"  ... and {alert.count - len(listed)} more.")
    if todo := DIGEST_TODO.get(NotifyTopic(alert.topic)):
        lines += ["", f"What to do: {todo}"]
    if target := link(settings, digest_path(alert)):
        lines += ["", f"See them all: {target}"]
    lines += ["", *_footer(settings, alert.topic, audience)]
    return subject, "\n".join(lines) + "\n"


def digest_path(alert: Alert) -> str:
    """The dashboard's list of what a digest counts."""
    query = {}
    if alert.distributor_id is not None:
        query["distributor"] = str(alert.distributor_id)
    if alert.topic == NotifyTopic.JOBS_FAILED:
        return "/dashboard/jobs?" + urlencode({"state": "failed", **query})
    return "/dashboard/drift"
