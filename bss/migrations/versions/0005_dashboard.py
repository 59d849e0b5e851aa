"""dashboard: the job's customer domain, and indexes for the job listing's filters

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from bss.migrate import create_index_online, drop_index_online

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_job_created": ["created_at", "id"],
    "ix_job_state_created": ["state", "created_at", "id"],
    "ix_job_instance_created": ["instance_id", "created_at", "id"],
    "ix_job_operation_created": ["operation", "created_at", "id"],
    "ix_job_domain_created": ["customer_domain", "created_at", "id"],
    "ix_job_external_ref": ["external_ref"],
    "ix_job_idempotency_key": ["idempotency_key"],
    "ix_job_finished": ["finished_at"],
    "ix_job_state_instance": ["state", "instance_id"],
}


def _domain_of(params: dict) -> str | None:
    # A copy of bss.models.job.customer_domain_of as it was when this migration was written:
    # a migration must not change when the model's code does.
    found = params.get("domain") or params.get("customer")
    if isinstance(found, dict):
        found = found.get("domain")
    return found.strip().lower()[:253] if isinstance(found, str) and found.strip() else None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch_op:
        batch_op.add_column(
            sa.Column(
                "customer_domain", sqlmodel.sql.sqltypes.AutoString(length=253), nullable=True
            )
        )
    job = sa.table(
        "job",
        sa.column("id", sa.String),
        sa.column("params", sa.JSON),
        sa.column("customer_domain", sa.String),
    )
    conn = op.get_bind()
    # Backfill in batches by id, so a large table is not held in memory at once.
    last = ""
    while True:
        rows = conn.execute(
            sa.select(job.c.id, job.c.params).where(job.c.id > last).order_by(job.c.id).limit(1000)
        ).all()
        if not rows:
            break
        for job_id, params in rows:
            domain = _domain_of(params) if isinstance(params, dict) else None
            if domain:
                conn.execute(job.update().where(job.c.id == job_id).values(customer_domain=domain))
        last = rows[-1][0]
    for name, columns in INDEXES.items():
        create_index_online(name, "job", columns)


def downgrade() -> None:
    for name in INDEXES:
        drop_index_online(name, "job")
    with op.batch_alter_table("job") as batch_op:
        batch_op.drop_column("customer_domain")
