"""mail: senders (Google accounts with OAuth), recipients, alerts and sent mail; the refresh
token's expiry on instances; OAuth states for a mail sender's consent

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    s = sqlmodel.sql.sqltypes.AutoString
    when = sqlmodel.sql.sqltypes.UTCDateTime
    op.create_table(
        "mail_sender",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("distributor_id", sa.Integer(), sa.ForeignKey("distributor.id"), nullable=True),
        sa.Column("name", s(length=100), nullable=False),
        sa.Column("mode", s(length=32), nullable=False),
        sa.Column("from_address", s(length=320), nullable=False),
        sa.Column("instance_id", sa.Integer(), sa.ForeignKey("instance.id"), nullable=True),
        sa.Column("refresh_token_enc", s(), nullable=True),
        sa.Column("granted_scopes", s(), nullable=False),
        sa.Column("service_account_key_enc", s(), nullable=True),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("status", s(length=32), nullable=False),
        sa.Column("last_error", s(length=500), nullable=True),
        sa.Column("authenticated_at", when(), nullable=True),
        sa.Column("access_token_expires_at", when(), nullable=True),
        sa.Column("refresh_token_expires_at", when(), nullable=True),
        sa.Column("last_sent_at", when(), nullable=True),
        sa.Column("created_at", when(), nullable=False),
        sa.Column("updated_at", when(), nullable=False),
        sa.UniqueConstraint("distributor_id", "name"),
    )
    op.create_index("ix_mail_sender_distributor_id", "mail_sender", ["distributor_id"])
    op.create_table(
        "notification_recipient",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("distributor_id", sa.Integer(), sa.ForeignKey("distributor.id"), nullable=True),
        sa.Column("address", s(length=320), nullable=True),
        sa.Column("all_admins", sa.Boolean(), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("created_at", when(), nullable=False),
    )
    op.create_index(
        "ix_notification_recipient_distributor_id", "notification_recipient", ["distributor_id"]
    )
    op.create_table(
        "alert",
        sa.Column("id", s(length=40), primary_key=True),
        sa.Column("key", s(length=200), nullable=False),
        sa.Column("topic", s(length=64), nullable=False),
        sa.Column("distributor_id", sa.Integer(), sa.ForeignKey("distributor.id"), nullable=True),
        sa.Column("instance_id", sa.Integer(), sa.ForeignKey("instance.id"), nullable=True),
        sa.Column("title", s(length=300), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("opened_at", when(), nullable=False),
        sa.Column("resolved_at", when(), nullable=True),
        sa.Column("next_notify_at", when(), nullable=True),
        sa.Column("notified_count", sa.Integer(), nullable=False),
        sa.Column("last_notified_at", when(), nullable=True),
        sa.UniqueConstraint("key", "opened_at"),
    )
    op.create_index("ix_alert_key", "alert", ["key"])
    op.create_index("ix_alert_distributor_id", "alert", ["distributor_id"])
    op.create_index("ix_alert_open", "alert", ["resolved_at", "next_notify_at"])
    op.create_table(
        "mail_message",
        sa.Column("id", s(length=40), primary_key=True),
        sa.Column("distributor_id", sa.Integer(), sa.ForeignKey("distributor.id"), nullable=True),
        sa.Column("alert_id", s(length=40), sa.ForeignKey("alert.id"), nullable=True),
        sa.Column("topic", s(length=64), nullable=False),
        sa.Column("sender_id", sa.Integer(), sa.ForeignKey("mail_sender.id"), nullable=True),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("subject", s(length=300), nullable=False),
        sa.Column("body", s(), nullable=False),
        sa.Column("state", s(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", s(length=500), nullable=True),
        sa.Column("provider_id", s(length=200), nullable=True),
        sa.Column("created_at", when(), nullable=False),
        sa.Column("next_attempt_at", when(), nullable=True),
        sa.Column("enqueued_at", when(), nullable=True),
        sa.Column("sent_at", when(), nullable=True),
    )
    op.create_index("ix_mail_message_distributor_id", "mail_message", ["distributor_id"])
    op.create_index("ix_mail_message_alert_id", "mail_message", ["alert_id"])
    op.create_index("ix_mail_message_created_at", "mail_message", ["created_at"])
    op.create_index("ix_mail_message_state_next", "mail_message", ["state", "next_attempt_at"])
    with op.batch_alter_table("instance") as batch_op:
        batch_op.add_column(sa.Column("refresh_token_expires_at", when(), nullable=True))
    with op.batch_alter_table("oauth_state") as batch_op:
        batch_op.add_column(
            sa.Column(
                "sender_id",
                sa.Integer(),
                sa.ForeignKey("mail_sender.id", name="fk_oauth_state_sender_id_mail_sender"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("oauth_state") as batch_op:
        batch_op.drop_column("sender_id")
    with op.batch_alter_table("instance") as batch_op:
        batch_op.drop_column("refresh_token_expires_at")
    for index in (
        "ix_mail_message_state_next",
        "ix_mail_message_created_at",
        "ix_mail_message_alert_id",
        "ix_mail_message_distributor_id",
    ):
        op.drop_index(index, "mail_message")
    op.drop_table("mail_message")
    for index in ("ix_alert_open", "ix_alert_distributor_id", "ix_alert_key"):
        op.drop_index(index, "alert")
    op.drop_table("alert")
    op.drop_index("ix_notification_recipient_distributor_id", "notification_recipient")
    op.drop_table("notification_recipient")
    op.drop_index("ix_mail_sender_distributor_id", "mail_sender")
    op.drop_table("mail_sender")
