"""How every page shows a time: one format, `2026-11-28 09:30:05 UTC`, with how long ago (or how
soon) it is beside it or on hover. Templates use the `when` filter and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

from markupsafe import Markup

from bss.models import utcnow

FORMAT = "%Y-%m-%d %H:%M:%S UTC"


def _as_datetime(value: datetime | float) -> datetime:
    """A timestamp (a datetime, or seconds since the epoch as workers' heartbeats are) in UTC."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    # Stored datetimes are UTC; one without a zone is read as UTC rather than as local time.
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def absolute(value: datetime | float) -> str:
    """`2026-11-28 09:30:05 UTC`."""
    return _as_datetime(value).strftime(FORMAT)


def relative(value: datetime | float, *, now: datetime | None = None) -> str:
    """ "just now", "12 s ago", "3 min ago", "5 h ago", "4 days ago"; "in 3 min" ahead."""
    seconds = ((now or utcnow()) - _as_datetime(value)).total_seconds()
    span = abs(seconds)
    if span < 1:
        return "just now"
    text = duration(span, words=True)
    return f"{text} ago" if seconds > 0 else f"in {text}"


def duration(seconds: float | None, *, words: bool = False) -> str:
    """A length of time: "250ms", "12s", "3m", "5h", "4d" (words: "12 s", "3 min", "4 days")."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    units = (
        (120, 1, "s", "s"),
        (7200, 60, "m", "min"),
        (172800, 3600, "h", "h"),
        (float("inf"), 86400, "d", "days"),
    )
    for below, size, short, long in units:
        if seconds < below:
            return f"{seconds / size:.0f} {long}" if words else f"{seconds / size:.0f}{short}"
    raise AssertionError("unreachable")  # pragma: no cover


def when(value: datetime | float | None, ago: bool = False) -> Markup:
    """A <time> showing `value` in the one format, how long ago on hover (`ago`: also beside it);
    empty for no time, so that `x | when or '—'` shows a dash."""
    if value is None or value == "":
        return Markup("")
    moment = _as_datetime(value)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    hint = relative(moment)
    # The date and the clock each stay whole; a narrow column may put one above the other.
    shown = Markup('<span class="date">{}</span> <span class="clock">{}</span>').format(
        moment.strftime("%Y-%m-%d"), moment.strftime("%H:%M:%S UTC")
    )
    beside = Markup(' <span class="ago">· {}</span>').format(hint) if ago else Markup("")
    return Markup('<time datetime="{}" title="{}">{}</time>{}').format(stamp, hint, shown, beside)
