"""flow control: why a job waits, a long job's progress, fair shares, per-instance quotas

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from bss.migrate import create_index_online, drop_index_online

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch_op:
        batch_op.add_column(
            sa.Column("wait_reason", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True)
        )
        batch_op.add_column(sa.Column("progress", sa.JSON(), nullable=True))
    # the listing by distributor and state, and the fair-share release of its jobs not yet
    # sent to workers, oldest first
    create_index_online(
        "ix_job_distributor_state", "job", ["distributor_id", "state", "created_at", "id"]
    )
    with op.batch_alter_table("distributor") as batch_op:
        batch_op.add_column(sa.Column("weight", sa.Float(), nullable=False, server_default="1.0"))
        batch_op.add_column(sa.Column("max_in_flight", sa.Integer(), nullable=True))
    with op.batch_alter_table("instance") as batch_op:
        batch_op.add_column(sa.Column("quotas", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instance") as batch_op:
        batch_op.drop_column("quotas")
    with op.batch_alter_table("distributor") as batch_op:
        batch_op.drop_column("max_in_flight")
        batch_op.drop_column("weight")
    drop_index_online("ix_job_distributor_state", "job")
    with op.batch_alter_table("job") as batch_op:
        batch_op.drop_column("progress")
        batch_op.drop_column("wait_reason")
