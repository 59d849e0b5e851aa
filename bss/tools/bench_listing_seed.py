"""The listing bench's jobs: a million rows shaped like two months of a busy platform, written
in bulk (executemany on SQLite, COPY on PostgreSQL) so seeding takes a minute or two, not an
hour of ORM inserts."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bss.models import Distributor, Instance, JobState

DAYS = 60
# Share of all jobs per distributor: one large reseller, a few middling ones, a long tail.
DISTRIBUTOR_SHARES = (35, 20, 12, 10, 8, 6, 5, 4)
# What billing orders most: seat changes and licenses far more often than new customers.
OPERATION_SHARES = {
    "subscription.change_seats": 30,
    "order.create": 14,
    "license.assign": 14,
    "license.revoke": 6,
    "customer.sync": 8,
    "subscription.create": 8,
    "subscription.change_plan": 4,
    "subscription.change_renewal": 4,
    "subscription.suspend": 3,
    "subscription.activate": 3,
    "customer.update": 3,
    "user.create_admin": 3,
}
CUSTOMERS_PER_DISTRIBUTOR = 6000
SAMPLES = 400
FAILURE = '{"code": "google_error", "message": "Google refused the request", "status": 400}'
# The newest jobs are the ones not yet done: a billing import's backlog, and what runs now.
IN_FLIGHT = {
    JobState.QUEUED: 4000,
    JobState.RUNNING: 16,
    JobState.WAITING: 300,
    JobState.WAITING_QUOTA: 100,
    JobState.RETRYING: 200,
}
# Older jobs ended: mostly succeeded; parked ones wait for their instance's re-consent.
ENDED = ((JobState.SUCCEEDED, 0.935), (JobState.FAILED, 0.045), (JobState.CANCELLED, 0.01))
COLUMNS = (
    "id",
    "distributor_id",
    "instance_id",
    "operation",
    "params",
    "external_ref",
    "customer_domain",
    "idempotency_key",
    "request_hash",
    "state",
    "attempts",
    "checkpoint",
    "result",
    "error",
    "created_at",
    "updated_at",
    "enqueued_at",
    "started_at",
    "finished_at",
    "waiting_for",
    "wait_reason",
)


@dataclass
class Seeded:
    """What was written, for the bench to pick realistic parameters from."""

    jobs: int
    now: datetime
    distributors: list[int] = field(default_factory=list)
    instances: dict[int, list[int]] = field(default_factory=dict)  # per distributor
    operations: list[str] = field(default_factory=lambda: list(OPERATION_SHARES))
    # A few hundred jobs picked at random while seeding: real ids, refs, domains and times
    samples: list[dict[str, Any]] = field(default_factory=list)

    def external_ref(self, n: int) -> str:
        return f"INV-{n:08d}"

    def domain(self, distributor_id: int, k: int) -> str:
        return f"c{k}.d{distributor_id}.example"


def _tenants(engine: Engine, now: datetime) -> Seeded:
    seeded = Seeded(jobs=0, now=now)
    with Session(engine) as session:
        for d, _share in enumerate(DISTRIBUTOR_SHARES, start=1):
            session.add(Distributor(id=d, name=f"Reseller {d}", slug=f"reseller-{d}"))
        session.flush()
        for d, _share in enumerate(DISTRIBUTOR_SHARES, start=1):
            # 1 to 4 instances each: the large ones sell through several Google resellers
            for i in range(1 + (len(DISTRIBUTOR_SHARES) - d) // 2):
                instance = Instance(
                    distributor_id=d,
                    name=f"inst-{d}-{i}",
                    status="authenticated" if (d, i) != (5, 0) else "needs_reauth",
                )
                session.add(instance)
                session.flush()
                seeded.instances.setdefault(d, []).append(instance.id or 0)
        session.commit()
    seeded.distributors = sorted(seeded.instances)
    return seeded


def _state(rng: random.Random, age: int, count: int) -> str:
    """The state of the `age`-th newest job: the newest are in flight, the rest ended."""
    edge = 0
    for state, n in IN_FLIGHT.items():
        edge += n * count // 1_000_000 or min(n, 1)
        if age < edge:
            return state
    if age < edge * 4 and rng.random() < 0.5:
        return JobState.SUCCEEDED  # the backlog is interleaved with jobs that already ran
    if rng.random() < 0.005:
        return JobState.WAITING_REAUTH
    roll = rng.random()
    for state, share in ENDED:
        roll -= share
        if roll < 0:
            return state
    return JobState.SUCCEEDED


def _when(at: datetime) -> str:
    """The text SQLAlchemy stores for an aware datetime on SQLite (UTC, microseconds, no
    offset); PostgreSQL reads it as UTC too (the session's time zone is UTC for COPY below)."""
    return at.isoformat(" ", "microseconds")


def _rows(seeded: Seeded, count: int) -> Iterator[tuple[Any, ...]]:
    """`count` jobs in COLUMNS order, oldest first, created over the last DAYS days; datetimes
    and JSON as the text the app's column types write."""
    rng = random.Random(20260101)
    random_ = rng.random
    # Weighted choices drawn from tables: rng.choices per row would be most of the time spent.
    shares = zip(seeded.distributors, DISTRIBUTOR_SHARES, strict=True)
    distributors = [d for d, w in shares for _ in range(w)]
    operations = [op for op, w in OPERATION_SHARES.items() for _ in range(w)]
    start = seeded.now.replace(tzinfo=None) - timedelta(days=DAYS)
    step = DAYS * 86400.0 / count
    pick = int(count / SAMPLES) or 1
    for n in range(count):
        created = start + timedelta(seconds=step * (n + random_()))
        distributor = distributors[int(random_() * len(distributors))]
        choices = seeded.instances[distributor]
        instance = choices[int(random_() * len(choices))]
        operation = operations[int(random_() * len(operations))]
        domain = seeded.domain(distributor, int(random_() ** 2 * CUSTOMERS_PER_DISTRIBUTOR))
        state = _state(rng, count - 1 - n, count)
        started = created + timedelta(seconds=0.05 + 3 * random_())
        finished = started + timedelta(seconds=0.3 + 8 * random_())
        ended = state in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
        ran = ended or state in (JobState.RUNNING, JobState.RETRYING, JobState.WAITING_REAUTH)
        job_id = f"job_{rng.getrandbits(128):032x}"
        external_ref = seeded.external_ref(n) if random_() < 0.9 else None
        row = (
            job_id,
            distributor,
            instance,
            operation,
            f'{{"domain": "{domain}", "sku": "1010020027", "seats": {n % 500 + 1}}}',
            external_ref,
            domain,
            f"idem-{n:08d}" if random_() < 0.8 else None,
            f"{rng.getrandbits(256):064x}",
            str(state),
            1 if ran else 0,
            '{"customer": {"customerId": "C0abc123"}}' if ran else "{}",
            '{"customer_id": "C0abc123"}' if state == JobState.SUCCEEDED else "null",
            FAILURE if state == JobState.FAILED else "null",
            _when(created),
            _when(finished if ended else created),
            _when(created) if state != JobState.QUEUED or n % 2 else None,
            _when(started) if ran else None,
            _when(finished) if ended else None,
            None,
            "an earlier job on the same customer" if state == JobState.WAITING else None,
        )
        if n % pick == pick // 2:
            seeded.samples.append(
                {
                    "id": job_id,
                    "distributor_id": distributor,
                    "instance_id": instance,
                    "operation": operation,
                    "customer_domain": domain,
                    "external_ref": external_ref,
                    "created_at": created.replace(tzinfo=UTC),
                }
            )
        yield row


def _insert_sqlite(engine: Engine, rows: Iterator[tuple[Any, ...]]) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA cache_size=-1000000")  # this connection only: 1 GB
        marks = ", ".join("?" for _ in COLUMNS)
        insert = f"INSERT INTO job ({', '.join(COLUMNS)}) VALUES ({marks})"  # noqa: S608
        # sqlite3 reads an iterator as it goes: the million rows are never all in memory
        cursor.executemany(insert, rows)  # type: ignore[arg-type]
        raw.commit()
        cursor.execute("PRAGMA cache_size=-2000")
    finally:
        raw.close()


def _insert_postgresql(engine: Engine, rows: Iterator[tuple[Any, ...]]) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SET LOCAL TIME ZONE 'UTC'")
        with cursor.copy(f"COPY job ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def seed_jobs(engine: Engine, count: int) -> Seeded:
    """Distributors, instances and `count` jobs over the last DAYS days, written in bulk."""
    now = datetime.now(UTC)
    seeded = _tenants(engine, now)
    rows = _rows(seeded, count)
    if engine.dialect.name == "sqlite":
        _insert_sqlite(engine, rows)
    else:
        _insert_postgresql(engine, rows)
    seeded.jobs = count
    return seeded
