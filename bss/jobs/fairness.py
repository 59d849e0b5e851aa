"""Distributors share the workers: a flood from one does not delay another's single order.

The database is the record and the broker only delivers, so each distributor may have at most
its share of jobs *in flight* (sent to the broker and not ended: `queued` with `enqueued_at` set,
`running`, or `waiting_quota`). Its other queued jobs are *held* (`enqueued_at` NULL,
`wait_reason` saying why) and sent, oldest first and in turn across its instances, whenever one
of its jobs leaves the workers (`release`). The share is BSS_FAIR_SHARE_SLOTS times the
distributor's weight, at least one, and at most its own `max_in_flight`. Jobs coming back from
`retrying`, `waiting` or `waiting_quota` need no new slot: they were admitted once already.

Claims are conditional updates (`enqueued_at IS NULL`), so two releasers never send the same job,
and the in-flight count is read in the same statement as the jobs to release, so they do not
exceed the share between them either. A job accepted over the API is written sent or held by
one INSERT that reads its distributor's load itself (bss.jobs.intake). A release that was lost
(a worker died, the broker was away) is made up for by the sweep, which releases every
distributor that has held jobs.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, update
from sqlmodel import Session, col, select

from bss.db import session_scope
from bss.errors import ValidationFailed
from bss.jobs.rows import ANY_HELD, JOB, ORM, ROWS
from bss.jobs.turns import CLAIM, CLAIM_ONE, next_turns
from bss.models import Distributor, Instance, Job, JobState, add_event, utcnow
from bss.settings import Settings

log = logging.getLogger(__name__)

Send = Callable[[str], None]

# How many of a distributor's held jobs a new one counts before it (its reason says "more
# than" past that): counting them all would cost as much as the backlog.
HELD_COUNTED = 1000
# Jobs claimed at once when a distributor has no limit (BSS_FAIR_SHARE_SLOTS=0, no cap).
UNLIMITED_BATCH = 500
MAX_WEIGHT = 1000.0
# A distributor's terms (weight, cap, instances) are read at most once in this many seconds per
# process: a change of weight or cap, or a new instance, takes effect within that time (at once
# in the process that made the change). Accepting an order then reads no Distributor row.
TERMS_TTL_SECONDS = 2.0


HELD = ORM.held


def fair_share(slots: int, weight: float, max_in_flight: int | None) -> int | None:
    """How many of a distributor's jobs may be in flight at once (None: no limit)."""
    by_weight = max(1, math.floor(slots * weight + 0.5)) if slots > 0 else None
    if max_in_flight is None:
        return by_weight
    cap = max(max_in_flight, 1)  # never 0: held jobs would wait for ever
    return cap if by_weight is None else min(by_weight, cap)


@dataclass(frozen=True)
class Terms:
    """How a distributor shares the workers now."""

    share: int | None  # its jobs in flight at once (None: no limit)
    instances: int  # more than one: its instances take turns


def terms_of(session: Session, settings: Settings, distributor_id: int) -> Terms:
    """The distributor's share of the workers, and whether its instances take turns."""
    instances = (
        select(func.count())
        .select_from(Instance)
        .where(Instance.distributor_id == distributor_id)
        .scalar_subquery()
    )
    weight, cap, count = session.exec(
        select(Distributor.weight, Distributor.max_in_flight, instances).where(
            Distributor.id == distributor_id
        )
    ).one()
    return Terms(fair_share(settings.fair_share_slots, weight, cap), count)


_terms: dict[tuple[str, int, int], tuple[float, Terms]] = {}


def current_terms(session: Session, settings: Settings, distributor_id: int) -> Terms:
    """`terms_of`, read again at most every TERMS_TTL_SECONDS in this process."""
    key = (settings.database_url, settings.fair_share_slots, distributor_id)
    now = time.monotonic()
    known = _terms.get(key)
    if known is not None and known[0] > now:
        return known[1]
    terms = terms_of(session, settings, distributor_id)
    _terms[key] = (now + TERMS_TTL_SECONDS, terms)
    return terms


def forget_terms(distributor_id: int | None) -> None:
    """Read the distributor's terms afresh next time in this process (they were just changed)."""
    for key in [k for k in _terms if k[2] == distributor_id]:
        _terms.pop(key, None)


def has_held(session: Session, distributor_id: int) -> bool:
    """Whether the distributor has jobs held back (one indexed probe)."""
    found = session.connection().execute(ANY_HELD, {"of_distributor": distributor_id})
    return found.first() is not None


OF_DISTRIBUTOR = JOB.c.distributor_id == bindparam("distributor")
# The distributor's jobs in flight, and its held jobs counted up to past HELD_COUNTED (two more:
# a job already held, counting itself, still finds more than HELD_COUNTED before it): the one
# from the partial index of jobs in flight (bss.models.job), the other stopping at its limit,
# so that both cost what the share holds, not the backlog. Also part of an API order's
# statement (bss.jobs.intake).
IN_FLIGHT_COUNT = select(func.count()).select_from(JOB).where(OF_DISTRIBUTOR, ROWS.in_flight)
_HELD_FIRST = select(JOB.c.id).where(OF_DISTRIBUTOR, ROWS.held).limit(HELD_COUNTED + 2).subquery()
HELD_COUNT = select(func.count()).select_from(_HELD_FIRST)
_LOAD = select(IN_FLIGHT_COUNT.scalar_subquery(), HELD_COUNT.scalar_subquery())


def load(session: Session, distributor_id: int) -> tuple[int, int]:
    """The distributor's jobs in flight (sent to the workers and not ended) and held back (up
    to past HELD_COUNTED)."""
    busy, held = session.connection().execute(_LOAD, {"distributor": distributor_id}).one()
    return busy, held


def admit(session: Session, settings: Settings, job: Job, send: Send) -> bool:
    """Send a newly accepted (committed) job now if its distributor has room, else hold it with
    the reason; commits. Older held jobs of the distributor go first when there is room.

    False when the broker could not be reached: the job stays held and the sweep sends it.
    """
    terms = current_terms(session, settings, job.distributor_id)
    busy, held = load(session, job.distributor_id)
    claimed: list[str] = []
    claimed_at = utcnow()
    if terms.share is None or busy < terms.share:  # room: take the next turns as releasers do
        turns, busy = _next_turns(session, job.distributor_id, terms)
        claimed = _claim(session, turns, claimed_at)
    if job.id not in claimed:
        hold(session, job.id, terms.share, busy=busy, earlier=max(held - 1, 0))
    session.commit()
    sent = deliver(session, claimed, claimed_at, send)
    return job.id in sent or job.id not in claimed


@dataclass(frozen=True)
class Claimed:
    """Held jobs claimed for sending, in their turn's order; sent after the claim commits."""

    ids: list[str]
    at: datetime


def claim_turns(
    session: Session,
    settings: Settings,
    distributor_id: int,
    *,
    note: str | None = None,
    held: bool | None = None,
) -> Claimed:
    """Claim the distributor's held jobs that fit in its share now (oldest first, in turn
    across its instances), in the caller's transaction; `note` goes on each one's timeline.
    `held`: whether the distributor has held jobs, when the caller's statement read it.
    Send them with `send_claimed` once that transaction has committed."""
    if held is None:
        held = has_held(session, distributor_id)
    if not held:  # the usual case: nothing to claim
        return Claimed([], utcnow())
    terms = current_terms(session, settings, distributor_id)
    turns, _busy = _next_turns(session, distributor_id, terms)
    claimed_at = utcnow()
    claimed = _claim(session, turns, claimed_at)
    if note:
        for job_id in claimed:
            add_event(session, job_id, "sweep", note, state=JobState.QUEUED)
    return Claimed(claimed, claimed_at)


def send_claimed(settings: Settings, claimed: Claimed, send: Send) -> list[str]:
    """Send what `claim_turns` claimed (committed); those the broker did not take go back to
    held for the sweep. The ids sent."""
    sent, unsent = _send_each(claimed.ids, send)
    if unsent:  # a session only when the broker failed
        with session_scope(settings.database_url) as s:
            _put_back(s, unsent, claimed.at)
    return sent


def release(
    settings: Settings, distributor_id: int, send: Send, *, note: str | None = None
) -> list[str]:
    """Send the distributor's held jobs that fit in its share now (oldest first, in turn across
    its instances); their ids. `note` goes on the timeline of each one sent."""
    with session_scope(settings.database_url) as s:
        claimed = claim_turns(s, settings, distributor_id, note=note)
    return send_claimed(settings, claimed, send)


def distributors_with_held_jobs(settings: Settings) -> list[int]:
    """Distributors that have jobs held back: for the sweep to release (a safety net)."""
    with session_scope(settings.database_url) as s:
        return list(s.exec(select(Job.distributor_id).where(HELD).distinct()).all())


def set_weight(session: Session, distributor: Distributor, weight: float) -> None:
    """Change the distributor's share of the workers relative to others (1 = equal)."""
    if not math.isfinite(weight) or not 0 < weight <= MAX_WEIGHT:
        raise ValidationFailed(
            f"The weight must be a number above 0 and at most {MAX_WEIGHT:g}, not {weight:g}: "
            "1 is an equal share of the workers, 2 twice the share of a distributor at 1.",
            details=[{"field": "weight", "problem": f"not above 0 and at most {MAX_WEIGHT:g}"}],
        )
    distributor.weight = weight
    session.add(distributor)
    forget_terms(distributor.id)


def set_max_in_flight(session: Session, distributor: Distributor, most: int | None) -> None:
    """Cap the distributor's jobs in flight at `most` (None: no cap of its own)."""
    if most is not None and most < 1:
        raise ValidationFailed(
            f"The most jobs in flight must be 1 or more, not {most}; to remove the cap, set it to "
            "none (the weight alone then sets the share).",
            details=[{"field": "max_in_flight", "problem": "not a whole number of 1 or more"}],
        )
    distributor.max_in_flight = most
    session.add(distributor)
    forget_terms(distributor.id)


def _next_turns(session: Session, distributor_id: int, terms: Terms) -> tuple[list[str], int]:
    """The held jobs to send now (oldest first, in turn across instances) and the jobs in flight,
    read in one statement so that releasers at the same moment see one state."""
    most = terms.share if terms.share is not None else UNLIMITED_BATCH
    conn = session.connection()  # statements on the table: no ORM execution to set up
    held, in_flight_now = next_turns(conn, distributor_id, instances=terms.instances, most=most)
    room = len(held) if terms.share is None else max(terms.share - in_flight_now, 0)
    return held[:room], in_flight_now


def claim_held(session: Session, distributor_id: int, terms: Terms, at: datetime) -> list[str]:
    """Claim the distributor's held jobs that fit in its share now, in turn, as releasers do (in
    the caller's transaction); the ids claimed, to `deliver` after commit."""
    turns, _busy = _next_turns(session, distributor_id, terms)
    return _claim(session, turns, at)


def _claim(session: Session, ids: Sequence[str], at: datetime) -> list[str]:
    """Mark these held jobs sent; only those still held (another releaser may have won)."""
    if not ids:
        return []
    conn = session.connection()
    if len(ids) == 1:
        return list(conn.execute(CLAIM_ONE, {"job_id": ids[0], "at": at}).scalars())
    claimed = set(conn.execute(CLAIM, {"ids": list(ids), "at": at}).scalars())
    return [i for i in ids if i in claimed]  # in their turn's order


def hold_reason(share: int | None, *, busy: int, earlier: int) -> str:
    """Why a newly accepted job is held, in words: `earlier` held jobs of its distributor go
    before it, or its `busy` jobs in flight fill its share."""
    pace = f"; it runs {share} at a time." if share is not None else "."
    if earlier > HELD_COUNTED:
        return f"Queued behind more than {HELD_COUNTED:,} earlier jobs of this distributor{pace}"
    if earlier:
        jobs = "job" if earlier == 1 else "jobs"
        return f"Queued behind {earlier:,} earlier {jobs} of this distributor{pace}"
    jobs = "job" if busy == 1 else "jobs"
    return f"Queued until one of this distributor's {busy} {jobs} in progress ends{pace}"


def hold(session: Session, job_id: str, share: int | None, *, busy: int, earlier: int) -> str:
    """Keep the job back, saying why in words (once, when it is accepted); the reason."""
    why = hold_reason(share, busy=busy, earlier=earlier)
    done = session.exec(update(Job).where(col(Job.id) == job_id, HELD).values(wait_reason=why))
    if done.rowcount:
        add_event(session, job_id, "state", why, state=JobState.QUEUED, held=True)
    return why


def deliver(session: Session, ids: list[str], claimed_at: datetime, send: Send) -> list[str]:
    """Send the claimed jobs (after commit); if the broker fails, the rest go back to held (and
    this commits). The ids sent."""
    sent, unsent = _send_each(ids, send)
    if unsent:
        _put_back(session, unsent, claimed_at)
        session.commit()
    return sent


def _send_each(ids: list[str], send: Send) -> tuple[list[str], list[str]]:
    """Send the jobs in order until the broker fails: (sent, not sent)."""
    for n, job_id in enumerate(ids):
        try:
            send(job_id)
        except Exception as exc:  # noqa: BLE001 - any broker failure: the sweep sends them later
            log.warning("%d job(s) not sent (%s); they stay held for the sweep", len(ids) - n, exc)
            return ids[:n], ids[n:]
    return ids, []


def _put_back(session: Session, ids: list[str], claimed_at: datetime) -> None:
    """Claimed jobs the broker did not take: held again (those no one touched since)."""
    session.execute(
        update(Job)
        .where(
            col(Job.id).in_(ids),
            col(Job.state) == JobState.QUEUED,
            col(Job.enqueued_at) == claimed_at,
        )
        .values(enqueued_at=None)
    )
