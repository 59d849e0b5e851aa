"""fair share: a partial index of a distributor's jobs in flight

Counting a distributor's jobs in flight (at every order and every release) read all its queued
jobs to tell the sent from the held, as many as a billing system's import had queued; the
partial index holds only the jobs in flight, as many as its share lets run.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa

from bss.migrate import create_index_online, drop_index_online

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# bss.models.job's IN_FLIGHT_SQL, as it was when this was written.
IN_FLIGHT = (
    "state IN ('running', 'waiting_quota') OR (state = 'queued' AND enqueued_at IS NOT NULL)"
)


def upgrade() -> None:
    where = sa.text(IN_FLIGHT)
    create_index_online(
        "ix_job_in_flight", "job", ["distributor_id"], sqlite_where=where, postgresql_where=where
    )


def downgrade() -> None:
    drop_index_online("ix_job_in_flight", "job")
