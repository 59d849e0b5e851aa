"""The job engine's hot statements, built once, on the tables themselves (SQLAlchemy Core).

A worker runs each of these once or more per job: leasing it, saving each checkpoint, ending
it. Through the ORM each one cost an object load, an identity map and a unit-of-work flush, and
building a statement anew for every job cost as much as running it; so these are built once at
import with bound parameters (their compiled form and cache key are then reused too), and the
timeline lines of a step go in one executemany.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    func,
    insert,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.orm import Mapped
from sqlmodel import col

from bss.models import Distributor, Instance, Job, JobEvent, JobSecret, JobState, utcnow

JOB: Table = Job.__table__  # type: ignore[attr-defined]
EVENT: Table = JobEvent.__table__  # type: ignore[attr-defined]
SECRET: Table = JobSecret.__table__  # type: ignore[attr-defined]
DISTRIBUTOR: Table = Distributor.__table__  # type: ignore[attr-defined]
INSTANCE: Table = Instance.__table__  # type: ignore[attr-defined]

FINAL = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
RUNNABLE = (JobState.QUEUED, JobState.RETRYING, JobState.WAITING, JobState.WAITING_QUOTA)
# The states a job set aside waits in (see JobOutcomes._set_aside).
SET_ASIDE = (JobState.QUEUED, JobState.WAITING_QUOTA)


def _state(state: JobState) -> ColumnElement[str]:
    """A state as a literal in the statement's text, not a bound parameter: a planner matches a
    partial index's condition only against literals (bss.models.job.IN_FLIGHT_SQL)."""
    return literal_column(f"'{state.value}'")


def _states(states: tuple[JobState, ...]) -> list[ColumnElement[str]]:
    """States as literals (see _state). A list of values would be an "expanding" parameter,
    rendered into the statement's text anew at every execution."""
    return [_state(state) for state in states]


@dataclass(frozen=True)
class Load:
    """Which of a distributor's jobs are held, and which in flight, as SQL conditions;
    `in_flight` exactly as the partial index ix_job_in_flight says it (bss.models.job's
    IN_FLIGHT_SQL), so that it serves. Held jobs are read on (distributor_id, state,
    created_at, id): oldest first, past at most the few queued jobs already sent."""

    held: ColumnElement[bool]
    # A job waiting for its Google quota keeps its place in flight: releasing another in its
    # stead would only queue more calls on a quota already spent, and its in-thread waits would
    # take the threads that other distributors' jobs need.
    in_flight: ColumnElement[bool]

    @classmethod
    def on(
        cls,
        state: ColumnElement[str] | Mapped[str],
        enqueued_at: ColumnElement[datetime | None] | Mapped[datetime | None],
    ) -> Load:
        queued = _state(JobState.QUEUED)
        return cls(
            held=and_(state == queued, enqueued_at.is_(None)),
            in_flight=or_(
                state.in_([_state(JobState.RUNNING), _state(JobState.WAITING_QUOTA)]),
                and_(state == queued, enqueued_at.is_not(None)),
            ),
        )


ORM = Load.on(col(Job.state), col(Job.enqueued_at))
# The same on the table's own columns, for Core statements (they compile without the ORM).
ROWS = Load.on(JOB.c.state, JOB.c.enqueued_at)


# A row of any statement's result
AnyRow = Row[*tuple[Any, ...]]

# A timeline line not written yet: (kind, message, data)
Line = tuple[str, str, dict[str, Any]]


@dataclass
class LeasedJob:
    """What a worker needs of the job it leased (read back by the lease's own UPDATE)."""

    id: str
    distributor_id: int
    instance_id: int
    operation: str
    params: dict[str, Any]
    checkpoint: dict[str, Any]
    attempts: int
    created_at: datetime

    COLUMNS: ClassVar[tuple[str, ...]] = (
        *("id", "distributor_id", "instance_id", "operation", "params", "checkpoint"),
        *("attempts", "created_at"),
    )

    @classmethod
    def of(cls, row: AnyRow) -> LeasedJob:
        return cls(**{name: getattr(row, name) for name in cls.COLUMNS})


_LEASED = tuple(JOB.c[name] for name in LeasedJob.COLUMNS)
_THIS_JOB = JOB.c.id == bindparam("job_id")
_HELD_BY_US = (JOB.c.lease_owner == bindparam("worker")) & (JOB.c.state == JobState.RUNNING)


def _first_on_customer(
    earlier: Any, instance_id: Any, domain: Any, created_at: Any, job_id: Any
) -> Select[Any]:
    """The job that must go before another on the same customer (bss.jobs.ordering): an
    earlier one not ended, or any one running now; given that job's own columns or parameters."""
    return (
        select(earlier.c.id)
        .where(
            earlier.c.instance_id == instance_id,
            earlier.c.customer_domain == domain,
            earlier.c.id != job_id,
            or_(
                (tuple_(earlier.c.created_at, earlier.c.id) < tuple_(created_at, job_id))
                & earlier.c.state.not_in(_states(FINAL)),
                earlier.c.state == JobState.RUNNING,
            ),
        )
        .order_by(earlier.c.created_at, earlier.c.id)
        .limit(1)
    )


BLOCKER = _first_on_customer(
    JOB, bindparam("instance_id"), bindparam("domain"), bindparam("created_at"), bindparam("job_id")
)
_EARLIER = JOB.alias("earlier")

# The instance's columns that running a job reads (its status; the gateway's credentials and
# quota pacer): read with the lease's look, so that a process can keep the instance it loaded
# for as long as they stay the same (bss.jobs.runner).
INSTANCE_SEEN = (
    *("status", "name", "mode", "client_id", "client_secret_enc", "refresh_token_enc"),
    *("service_account_key_enc", "delegated_admin", "granted_scopes", "quotas"),
)

# What the lease looks at before it takes the job, with the job it must wait for, if any.
LOOK = (
    select(
        *(JOB.c[name] for name in ("id", "state", "attempts", "instance_id", "customer_domain")),
        JOB.c.created_at,
        _first_on_customer(
            _EARLIER, JOB.c.instance_id, JOB.c.customer_domain, JOB.c.created_at, JOB.c.id
        )
        .scalar_subquery()
        .label("blocker_id"),
        *(INSTANCE.c[name] for name in INSTANCE_SEEN),
    )
    .select_from(JOB.join(INSTANCE, INSTANCE.c.id == JOB.c.instance_id))
    .where(_THIS_JOB)
)

# The last state or resume line of a job: did its last run end by being set aside?
LAST_TURN = (
    select(EVENT.c.data)
    .where(
        EVENT.c.job_id == bindparam("job_id"),
        EVENT.c.kind.in_([literal_column("'state'"), literal_column("'resume'")]),
    )
    .order_by(EVENT.c.id.desc())
    .limit(1)
)

# Take the job. The state and attempts the lease looked at are conditions: had anything changed
# them since, whoever did sends the job again (or runs it), and that look would be stale.
LEASE = (
    update(JOB)
    .where(
        _THIS_JOB,
        JOB.c.state == bindparam("looked_state"),
        JOB.c.attempts == bindparam("looked_attempts"),
        or_(
            JOB.c.state.in_(_states(RUNNABLE)),
            # a worker that died mid-job leaves a running job, its lease lapsed
            (JOB.c.state == JobState.RUNNING) & (JOB.c.lease_expires_at < bindparam("now")),
        ),
        or_(JOB.c.next_attempt_at.is_(None), JOB.c.next_attempt_at <= bindparam("due")),
    )
    .values(
        state=JobState.RUNNING,
        waiting_for=None,
        wait_reason=None,
        lease_owner=bindparam("worker"),
        lease_expires_at=bindparam("until"),
        updated_at=bindparam("now"),
        next_attempt_at=None,
        attempts=JOB.c.attempts + bindparam("new_attempt"),
        # a new attempt starts now; a resumed one keeps its start
        started_at=func.coalesce(
            bindparam("started", type_=JOB.c.started_at.type), JOB.c.started_at
        ),
    )
    .returning(*_LEASED)
)


def lease_params(
    job_id: str, look: AnyRow, worker: str, *, resumed: bool, lease_s: float
) -> dict[str, Any]:
    """LEASE's parameters."""
    now = utcnow()
    return {
        "job_id": job_id,
        "looked_state": look.state,
        "looked_attempts": look.attempts,
        "now": now,
        "due": now + timedelta(seconds=1),
        "worker": worker,
        "until": now + timedelta(seconds=lease_s),
        "new_attempt": 0 if resumed else 1,
        "started": None if resumed else now,
    }


# Save a checkpoint under the lease (and extend it); with or without a long step's progress.
CHECKPOINT = (
    update(JOB)
    .where(_THIS_JOB, _HELD_BY_US)
    .values(
        checkpoint=bindparam("saved", type_=JOB.c.checkpoint.type),
        updated_at=bindparam("now"),
        lease_expires_at=bindparam("until"),
    )
)
CHECKPOINT_PROGRESS = CHECKPOINT.values(progress=bindparam("done", type_=JOB.c.progress.type))

# Jobs waiting for another one to end (bss.jobs.ordering), and whether a distributor has a held
# job (bss.jobs.fairness: one probe of the index; the commonest answer is no). On aliases, so
# that inside a statement on the job table (ENDING) they stay probes of their own.
_BEHIND = JOB.alias("behind")
WAITING_FOR = select(_BEHIND.c.id).where(
    _BEHIND.c.state == JobState.WAITING, _BEHIND.c.waiting_for == bindparam("job_id")
)
_HELD = JOB.alias("held")
ANY_HELD = (
    select(_HELD.c.id)
    .where(
        _HELD.c.distributor_id == bindparam("of_distributor"),
        Load.on(_HELD.c.state, _HELD.c.enqueued_at).held,
    )
    .limit(1)
)

# What ending a job must know besides the job, read back by the ending's own statement rather
# than by four more: secrets to settle, the distributor's webhook, jobs waiting behind this one,
# the distributor's held jobs its end may release. Each is an indexed probe (the usual answer is
# no), on parameters, not correlated: SQLite's RETURNING names the job's columns bare, which a
# subquery would read as its own.
ENDING = (
    select(SECRET.c.id).where(SECRET.c.job_id == bindparam("job_id")).exists().label("has_secrets"),
    select(DISTRIBUTOR.c.webhook_url)
    .where(DISTRIBUTOR.c.id == bindparam("of_distributor"))
    .scalar_subquery()
    .label("webhook_url"),
    WAITING_FOR.exists().label("has_waiting"),
    ANY_HELD.exists().label("has_held"),
)


@dataclass(frozen=True)
class Ending:
    """What FINISH and SUCCEED read back besides the job (see ENDING)."""

    has_secrets: bool
    tells_billing: bool
    has_waiting: bool
    has_held: bool

    @classmethod
    def of(cls, row: AnyRow) -> Ending:
        return cls(
            has_secrets=bool(row.has_secrets),
            tells_billing=bool(row.webhook_url),
            has_waiting=bool(row.has_waiting),
            has_held=bool(row.has_held),
        )


# The rest of what billing is shown of a job (bss.jobs.schemas.JobPublic): read back by the end,
# so that its webhook event is built from the row the end wrote, not from the job read again.
_SHOWN = tuple(
    JOB.c[name]
    for name in (
        *("state", "external_ref", "result", "error", "next_attempt_at", "updated_at"),
        *("started_at", "finished_at", "waiting_for", "wait_reason", "progress"),
    )
)

# End the job under the lease: its outcome, read back, and what its end must see to.
FINISH = (
    update(JOB)
    .where(_THIS_JOB, _HELD_BY_US)
    .values(
        state=bindparam("outcome"),
        result=bindparam("outcome_result", type_=JOB.c.result.type),
        error=bindparam("outcome_error", type_=JOB.c.error.type),
        finished_at=bindparam("now"),
        updated_at=bindparam("now"),
        lease_owner=None,
        lease_expires_at=None,
        next_attempt_at=None,
    )
    .returning(*_LEASED, *_SHOWN, *ENDING)
)
# The same for a job whose steps all succeeded, with the checkpoint of its last step: nothing
# at Google follows that step, so it is saved with the outcome, in one transaction. Should that
# transaction fail, the runner saves the step alone; should the database take nothing, the step
# runs again the way it does when Google's answer is lost: it checks Google first.
SUCCEED = FINISH.values(checkpoint=bindparam("saved", type_=JOB.c.checkpoint.type))

_SECRETS = select(SECRET.c.id, SECRET.c.name, SECRET.c.reveal).where(
    SECRET.c.job_id == bindparam("job_id")
)
_INSERT_LINE = insert(EVENT)


def insert_lines(session: Any, job_id: str, lines: list[Line]) -> None:
    """Put `lines` on the job's timeline, in the caller's transaction (one executemany)."""
    if not lines:
        return
    now = utcnow()
    session.execute(
        _INSERT_LINE,
        [
            {"job_id": job_id, "at": now, "kind": kind, "message": message, "data": data}
            for kind, message, data in lines
        ],
    )


def settle_secrets(
    session: Any,
    job_id: str,
    *,
    given: tuple[str, ...] | list[str],
    keep_generated: bool,
    reveal_generated: bool,
) -> None:
    """What a finished job keeps of its secrets.

    Secrets billing gave are deleted. Generated ones are deleted unless kept; a kept one already
    delivered (by email) is deleted too, unless `reveal_generated` says to show it once instead.
    """
    rows = session.execute(_SECRETS, {"job_id": job_id}).all()
    if not rows:
        return
    gone = [
        r.id
        for r in rows
        if r.name in given or not keep_generated or not (r.reveal or reveal_generated)
    ]
    shown = [r.id for r in rows if r.id not in gone and reveal_generated and not r.reveal]
    if gone:
        session.execute(SECRET.delete().where(SECRET.c.id.in_(gone)))
    if shown:
        session.execute(update(SECRET).where(SECRET.c.id.in_(shown)).values(reveal=True))
