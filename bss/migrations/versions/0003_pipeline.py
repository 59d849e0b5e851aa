"""pipeline: webhooks and job engine additions

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AutoString = sqlmodel.sql.sqltypes.AutoString
UTCDateTime = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "webhook_delivery",
        sa.Column("id", AutoString(length=40), nullable=False),
        sa.Column("distributor_id", sa.Integer(), nullable=False),
        sa.Column("job_id", AutoString(length=40), nullable=True),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("event", AutoString(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", AutoString(length=500), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("enqueued_at", UTCDateTime(), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["distributor_id"], ["distributor.id"]),
        sa.ForeignKeyConstraint(["instance_id"], ["instance.id"]),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_delivery_distributor_id"), ["distributor_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_webhook_delivery_job_id"), ["job_id"], unique=False)
        batch_op.create_index(
            "ix_webhook_delivery_state_updated", ["state", "updated_at"], unique=False
        )

    op.create_table(
        "job_secret",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", AutoString(length=40), nullable=False),
        sa.Column("name", AutoString(length=64), nullable=False),
        sa.Column("value_enc", AutoString(), nullable=False),
        sa.Column("reveal", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", "name"),
    )
    with op.batch_alter_table("job_secret", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_secret_job_id"), ["job_id"], unique=False)

    op.create_table(
        "customer_mirror",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", AutoString(length=64), nullable=False),
        sa.Column("domain", AutoString(length=253), nullable=False),
        sa.Column("customer", sa.JSON(), nullable=False),
        sa.Column("subscriptions", sa.JSON(), nullable=False),
        sa.Column("users", sa.JSON(), nullable=False),
        sa.Column("licenses", sa.JSON(), nullable=False),
        sa.Column("synced_at", UTCDateTime(), nullable=False),
        sa.Column("sync_job_id", AutoString(length=40), nullable=True),
        sa.ForeignKeyConstraint(["instance_id"], ["instance.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("instance_id", "customer_id"),
    )
    with op.batch_alter_table("customer_mirror", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_mirror_domain"), ["domain"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_customer_mirror_instance_id"), ["instance_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_mirror", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_mirror_instance_id"))
        batch_op.drop_index(batch_op.f("ix_customer_mirror_domain"))
    op.drop_table("customer_mirror")
    with op.batch_alter_table("job_secret", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_secret_job_id"))
    op.drop_table("job_secret")
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_delivery_state_updated")
        batch_op.drop_index(batch_op.f("ix_webhook_delivery_job_id"))
        batch_op.drop_index(batch_op.f("ix_webhook_delivery_distributor_id"))
    op.drop_table("webhook_delivery")
