"""events: Google's notifications, the desired state of subscriptions, drift, per-instance
registration and reconciliation

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    s = sqlmodel.sql.sqltypes.AutoString
    when = sqlmodel.sql.sqltypes.UTCDateTime
    op.create_table(
        "google_event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("message_id", s(length=200), nullable=False, unique=True),
        sa.Column("subscription", s(length=300), nullable=True),
        sa.Column("instance_id", sa.Integer(), sa.ForeignKey("instance.id"), nullable=True),
        sa.Column("distributor_id", sa.Integer(), sa.ForeignKey("distributor.id"), nullable=True),
        sa.Column("source", s(length=16), nullable=False),
        sa.Column("event_type", s(length=100), nullable=False),
        sa.Column("event_time", when(), nullable=True),
        sa.Column("publish_time", when(), nullable=True),
        sa.Column("customer_id", s(length=64), nullable=True),
        sa.Column("customer_domain", s(length=253), nullable=True),
        sa.Column("subscription_id", s(length=64), nullable=True),
        sa.Column("sku_id", s(length=100), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("state", s(length=16), nullable=False),
        sa.Column("note", s(length=500), nullable=True),
        sa.Column("received_at", when(), nullable=False),
        sa.Column("processed_at", when(), nullable=True),
    )
    op.create_index(
        "ix_google_event_instance_received", "google_event", ["instance_id", "received_at"]
    )
    op.create_index("ix_google_event_state_received", "google_event", ["state", "received_at"])
    op.create_table(
        "drift",
        sa.Column("id", s(length=40), primary_key=True),
        sa.Column("distributor_id", sa.Integer(), sa.ForeignKey("distributor.id"), nullable=False),
        sa.Column("instance_id", sa.Integer(), sa.ForeignKey("instance.id"), nullable=False),
        sa.Column("customer_id", s(length=64), nullable=False),
        sa.Column("customer_domain", s(length=253), nullable=True),
        sa.Column("subscription_id", s(length=64), nullable=True),
        sa.Column("sku_id", s(length=100), nullable=True),
        sa.Column("field", s(length=32), nullable=False),
        sa.Column("desired", sa.JSON(), nullable=True),
        sa.Column("actual", sa.JSON(), nullable=True),
        sa.Column("desired_job_id", s(length=40), nullable=True),
        sa.Column("detected_by", s(length=16), nullable=False),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("google_event.id"), nullable=True),
        sa.Column("state", s(length=16), nullable=False),
        sa.Column("detected_at", when(), nullable=False),
        sa.Column("updated_at", when(), nullable=False),
        sa.Column("resolved_at", when(), nullable=True),
        sa.Column("resolution", s(length=16), nullable=True),
        sa.Column("resolution_job_id", s(length=40), nullable=True),
        sa.Column("resolved_by", s(length=300), nullable=True),
    )
    op.create_index(
        "ix_drift_distributor_state", "drift", ["distributor_id", "state", "detected_at"]
    )
    op.create_index("ix_drift_instance_state", "drift", ["instance_id", "state"])
    op.create_table(
        "desired_subscription",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("instance_id", sa.Integer(), sa.ForeignKey("instance.id"), nullable=False),
        sa.Column("customer_id", s(length=64), nullable=False),
        sa.Column("sku_id", s(length=100), nullable=False),
        sa.Column("subscription_id", s(length=64), nullable=True),
        sa.Column("seats", sa.Integer(), nullable=True),
        sa.Column("plan", s(length=64), nullable=True),
        sa.Column("renewal", s(length=64), nullable=True),
        sa.Column("status", s(length=32), nullable=True),
        sa.Column("set_by_job_id", s(length=40), nullable=True),
        sa.Column("set_at", when(), nullable=False),
        sa.UniqueConstraint("instance_id", "customer_id", "sku_id"),
    )
    with op.batch_alter_table("instance") as batch_op:
        batch_op.add_column(
            sa.Column("events_mode", s(length=8), nullable=False, server_default="off")
        )
        batch_op.add_column(sa.Column("events_topic", s(length=300), nullable=True))
        batch_op.add_column(sa.Column("events_subscription", s(length=300), nullable=True))
        batch_op.add_column(sa.Column("events_registered_at", when(), nullable=True))
        batch_op.add_column(sa.Column("events_error", s(length=500), nullable=True))
        batch_op.add_column(sa.Column("last_event_at", when(), nullable=True))
        batch_op.add_column(sa.Column("last_reconciled_at", when(), nullable=True))
        batch_op.add_column(sa.Column("last_reconcile", sa.JSON(), nullable=True))
    with op.batch_alter_table("customer_mirror") as batch_op:
        batch_op.add_column(sa.Column("confirmed_at", when(), nullable=True))
        batch_op.add_column(sa.Column("last_event_time", when(), nullable=True))
        batch_op.add_column(
            sa.Column("status", s(length=32), nullable=False, server_default="active")
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_mirror") as batch_op:
        batch_op.drop_column("status")
        batch_op.drop_column("last_event_time")
        batch_op.drop_column("confirmed_at")
    with op.batch_alter_table("instance") as batch_op:
        for name in (
            "last_reconcile",
            "last_reconciled_at",
            "last_event_at",
            "events_error",
            "events_registered_at",
            "events_subscription",
            "events_topic",
            "events_mode",
        ):
            batch_op.drop_column(name)
    op.drop_table("desired_subscription")
    op.drop_index("ix_drift_instance_state", "drift")
    op.drop_index("ix_drift_distributor_state", "drift")
    op.drop_table("drift")
    op.drop_index("ix_google_event_state_received", "google_event")
    op.drop_index("ix_google_event_instance_received", "google_event")
    op.drop_table("google_event")
