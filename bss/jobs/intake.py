"""Accepting an order over the billing API in one transaction: validate, then one INSERT writes the
job (its unique Idempotency-Key with it) already sent or held by its distributor's share, its
first timeline line goes in the same transaction, one commit, then one broker send. On
PostgreSQL an order without secrets needs no transaction: the counts, then the INSERT and its
lines as one statement (bss.jobs.intake_rows), each in autocommit.

The INSERT decides sent or held itself, from the distributor's jobs in flight and held as it
writes (on SQLite the request holds the write lock from before it to the commit, taken as in
bss.jobs.write_lock), so a job that ends meanwhile cannot leave the new one held with a free
slot. The uncommon turns take the slower paths of bss.jobs.accept and bss.jobs.fairness: an older
held job goes first when there is room (claimed as releasers do, in a transaction after the
INSERT on PostgreSQL: should it fail, the job stays held for the sweep), a repeated
Idempotency-Key is answered from the first job, a broker away leaves the job held for the sweep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bss.crypto import Vault
from bss.db import again_on_conflict, one_trip_engine
from bss.errors import ConfigurationError, NotFound, ValidationFailed
from bss.jobs.accept import redact, replay_of, request_digest, secret_at
from bss.jobs.fairness import (
    Send,
    claim_held,
    current_terms,
    deliver,
    hold,
    hold_reason,
    load,
)
from bss.jobs.intake_rows import (
    ACCEPT_UNLIMITED,
    ACCEPT_WITHIN_SHARE,
    BEFORE,
    INSERT_LINES,
    INSERT_SECRETS,
    INSERT_UNLIMITED,
    INSERT_WITHIN_SHARE,
)
from bss.jobs.one_trip import LINES
from bss.jobs.write_lock import lock_for_writing
from bss.models import (
    Job,
    JobState,
    customer_domain_of,
    new_id,
    utcnow,
)
from bss.operations import get_operation
from bss.settings import Settings


@dataclass(frozen=True)
class NewJob:
    """A job as this request wrote it, for the answer (an ORM object costs more to make)."""

    id: str
    operation: str
    params: dict[str, Any]
    external_ref: str | None
    created_at: datetime
    wait_reason: str | None
    state: str = JobState.QUEUED
    attempts: int = 0
    checkpoint: dict[str, Any] = field(default_factory=dict)
    next_attempt_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    waiting_for: str | None = None
    progress: dict[str, Any] | None = None

    @property
    def updated_at(self) -> datetime:
        return self.created_at


@dataclass(frozen=True)
class Accepted:
    """What became of an order: its job (for a replay, the first one), whether this request
    created it, and whether the broker could not be reached (the sweep sends the job later)."""

    job: Job | NewJob
    created: bool
    broker_away: bool = False


def accept_job(
    session: Session,
    settings: Settings,
    *,
    distributor_id: int,
    instance_name: str,
    operation: str,
    params: dict[str, Any],
    send: Send,
    external_ref: str | None = None,
    idempotency_key: str | None = None,
    vault: Vault | None = None,
) -> Accepted:
    """Validate and record an order, sent to the workers at once while its distributor has room,
    else held saying why; commits, then sends. The same Idempotency-Key with the same body
    returns the first job; with another body it is refused (IdempotencyConflict)."""

    def replay() -> Job | None:
        if not idempotency_key:
            return None
        return replay_of(
            session,
            distributor_id=distributor_id,
            idempotency_key=idempotency_key,
            instance_name=instance_name,
            operation=operation,
            params=params,
            external_ref=external_ref,
            vault=vault,
        )

    try:
        op = get_operation(operation)
        validated = op.validate(params)
        secrets = {p: value for p in op.secret_fields if (value := secret_at(validated, p))}
        if secrets and vault is None:
            raise ConfigurationError("A job with secrets needs the vault to encrypt them.")
        dumped = validated.model_dump(mode="json", exclude_none=True)
        stored = redact(dumped, op.secret_fields) if op.secret_fields else dumped
        order = _Order(
            distributor_id=distributor_id,
            instance_name=instance_name,
            operation=op.name,
            stored=stored,
            external_ref=external_ref,
            idempotency_key=idempotency_key,
            request_hash=request_digest(
                instance_name=instance_name,
                operation=operation,
                params=params,
                external_ref=external_ref,
                secret_fields=op.secret_fields,
            ),
            kept={p: vault.encrypt(v) for p, v in secrets.items()} if vault is not None else {},
        )
        written = _write(session, settings, order)
    except (ValidationFailed, NotFound, ConfigurationError):
        first = replay()  # a repeated key answers as it did, whatever this body is
        if first is not None:
            return Accepted(first, created=False)
        raise
    except IntegrityError:
        # The key was used before (or by a request at the same moment): answer as its replay.
        session.rollback()
        first = replay()
        if first is None:
            raise
        return Accepted(first, created=False)
    delivered = deliver(session, written.claimed, written.at, send) if written.claimed else []
    job = NewJob(written.job_id, op.name, stored, external_ref, written.at, written.wait_reason)
    return Accepted(
        job,
        created=True,
        broker_away=written.job_id in written.claimed and written.job_id not in delivered,
    )


@dataclass(frozen=True)
class _Order:
    """A validated order, ready to write (its secrets encrypted)."""

    distributor_id: int
    instance_name: str
    operation: str
    stored: dict[str, Any]
    external_ref: str | None
    idempotency_key: str | None
    request_hash: str
    kept: dict[str, str]


@dataclass(frozen=True)
class _Written:
    """What one committed acceptance wrote: the job, when, those to send now, why it is held."""

    job_id: str
    at: datetime
    claimed: list[str]
    wait_reason: str | None


def _write(session: Session, settings: Settings, order: _Order) -> _Written:
    """The acceptance's transaction, up to its commit: the counts, the INSERT that decides sent
    or held, its timeline line and secrets, older held jobs claimed in turn. On PostgreSQL an
    order without secrets takes two statements in autocommit, the counts and the INSERT with
    its lines (bss.jobs.one_trip), and a transaction only to claim older held jobs in turn."""
    terms = current_terms(session, settings, order.distributor_id)
    one_trip = None if order.kept else one_trip_engine(settings.database_url)
    if one_trip is None:
        return again_on_conflict(session, lambda: _write_in_transaction(session, terms, order))

    def insert() -> tuple[_Plan, Any]:
        with one_trip.connect() as conn:
            plan = _plan(conn, terms, order)
            lines = [
                {"message": line["message"], "data": line["data"], "held": line is plan.held_line}
                for line in plan.lines
            ]
            statement = ACCEPT_UNLIMITED if terms.share is None else ACCEPT_WITHIN_SHARE
            given = {**plan.row, **plan.knobs, LINES: lines}
            return plan, conn.execute(statement, given).scalar_one()

    # A deadlock or serialization failure on PostgreSQL rolls back what it wrote (in one
    # statement, nothing; in a transaction, all of it) before anything is sent: it runs again,
    # from reading the counts.
    plan, enqueued_at = again_on_conflict(session, insert)
    job_id, now = plan.row["id"], plan.row["created_at"]
    if enqueued_at is not None:
        return _Written(job_id, now, [job_id], None)
    if plan.reason is not None:
        return _Written(job_id, now, [], plan.reason)

    def claim() -> tuple[list[str], str | None]:
        taken = _in_turn(session, terms, order.distributor_id, job_id, now)
        session.commit()
        return taken

    claimed, wait_reason = again_on_conflict(session, claim)
    return _Written(job_id, now, claimed, wait_reason)


@dataclass(frozen=True)
class _Plan:
    """What an order writes, made before the write: the job's row, the INSERT's knobs, its
    lines; `reason`: why it is held, when its distributor's share had no room."""

    row: dict[str, Any]
    knobs: dict[str, Any]
    accepted: dict[str, Any]
    held_line: dict[str, Any] | None
    reason: str | None

    @property
    def lines(self) -> list[dict[str, Any]]:
        """Its timeline lines, the held line last (written only when the INSERT holds it)."""
        return [self.accepted, self.held_line] if self.held_line else [self.accepted]


def _plan(conn: Any, terms: Any, order: _Order) -> _Plan:
    """Read the instance and the distributor's counts, and make the order's rows."""
    distributor_id = order.distributor_id
    before = conn.execute(BEFORE, {"distributor": distributor_id, "instance": order.instance_name})
    instance_id, busy, held = before.one()
    if instance_id is None:
        raise NotFound(
            f"No instance named {order.instance_name!r}.",
            details=[{"field": "instance", "problem": "no such instance"}],
        )
    room = terms.share is None or busy < terms.share
    # Said when the job is held for want of room; with room, only older held jobs can hold it
    # back, and it is claimed in turn with them (_in_turn).
    reason = None if room else hold_reason(terms.share, busy=busy, earlier=held)
    now = utcnow()
    job_id = new_id("job")
    row: dict[str, Any] = {
        "id": job_id,
        "distributor_id": distributor_id,
        "instance_id": instance_id,
        "operation": order.operation,
        "params": order.stored,
        "external_ref": order.external_ref,
        "customer_domain": customer_domain_of(order.stored),
        "idempotency_key": order.idempotency_key,
        "request_hash": order.request_hash,
        "state": JobState.QUEUED,
        "attempts": 0,
        "checkpoint": {},
        "created_at": now,
        "updated_at": now,
    }
    knobs = {"distributor": distributor_id, "share": terms.share, "now": now, "reason": reason}
    accepted = _line(job_id, now, "Accepted", state=JobState.QUEUED)
    held_line = _line(job_id, now, reason, state=JobState.QUEUED, held=True) if reason else None
    return _Plan(row, knobs, accepted, held_line, reason)


def _in_turn(
    session: Session, terms: Any, distributor_id: int, job_id: str, now: datetime
) -> tuple[list[str], str | None]:
    """A job written held while its distributor has room (older held jobs go first): claim
    those in turn, this one among them if its turn came; else say why it waits."""
    claimed = claim_held(session, distributor_id, terms, now)
    wait_reason = None
    if job_id not in claimed:
        busy, held = load(session, distributor_id)
        wait_reason = hold(session, job_id, terms.share, busy=busy, earlier=max(held - 1, 0))
    return claimed, wait_reason


def _write_in_transaction(session: Session, terms: Any, order: _Order) -> _Written:
    """The acceptance as one transaction of the session (see _write)."""
    conn = session.connection()
    plan = _plan(conn, terms, order)
    job_id, now = plan.row["id"], plan.row["created_at"]
    statement = INSERT_UNLIMITED if terms.share is None else INSERT_WITHIN_SHARE
    # Everything written is made before the write lock is taken, so that it is held briefly.
    kept = [
        {"job_id": job_id, "name": path, "value_enc": value, "reveal": False, "created_at": now}
        for path, value in order.kept.items()
    ]
    lock_for_writing(conn)  # from here to the commit, SQLite's one writer is this request
    enqueued_at = conn.execute(statement, {**plan.row, **plan.knobs}).scalar_one()
    sent = enqueued_at is not None
    conn.execute(INSERT_LINES, [plan.accepted] if sent else plan.lines)
    if kept:
        conn.execute(INSERT_SECRETS, kept)
    claimed, wait_reason = ([job_id], None) if sent else ([], plan.reason)
    if not sent and plan.reason is None:  # room, but older held jobs go first
        claimed, wait_reason = _in_turn(session, terms, order.distributor_id, job_id, now)
    session.commit()
    return _Written(job_id, now, claimed, wait_reason)


def _line(job_id: str, at: datetime, message: str, **data: Any) -> dict[str, Any]:
    """A timeline line's row (as bss.models.add_event writes it)."""
    return {"job_id": job_id, "at": at, "kind": "state", "message": message, "data": data}
