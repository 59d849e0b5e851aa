"""portal: users, sign-in and instance credentials

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AutoString = sqlmodel.sql.sqltypes.AutoString
UTCDateTime = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "portal_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", AutoString(length=320), nullable=False),
        sa.Column("name", AutoString(length=200), nullable=False),
        sa.Column("role", AutoString(length=32), nullable=False),
        sa.Column("distributor_id", sa.Integer(), nullable=True),
        sa.Column("password_hash", AutoString(length=300), nullable=True),
        sa.Column("google_sub", AutoString(length=255), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_sign_in_at", UTCDateTime(), nullable=True),
        sa.Column("disabled_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["distributor_id"], ["distributor.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("google_sub"),
    )
    with op.batch_alter_table("portal_user", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_portal_user_email"), ["email"], unique=True)
        batch_op.create_index(
            batch_op.f("ix_portal_user_distributor_id"), ["distributor_id"], unique=False
        )

    op.create_table(
        "user_session",
        sa.Column("id_hash", AutoString(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["portal_user.id"]),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    with op.batch_alter_table("user_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_session_user_id"), ["user_id"], unique=False)

    op.create_table(
        "oauth_state",
        sa.Column("state_hash", AutoString(length=64), nullable=False),
        sa.Column("purpose", AutoString(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("client_id", AutoString(length=300), nullable=False),
        sa.Column("browser_hash", AutoString(length=64), nullable=False),
        sa.Column("redirect_uri", AutoString(length=2000), nullable=False),
        sa.Column("code_verifier_enc", AutoString(), nullable=False),
        sa.Column("nonce", AutoString(length=100), nullable=True),
        sa.Column("display", AutoString(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["instance_id"], ["instance.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["portal_user.id"]),
        sa.PrimaryKeyConstraint("state_hash"),
    )
    with op.batch_alter_table("oauth_state", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oauth_state_user_id"), ["user_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_oauth_state_instance_id"), ["instance_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_oauth_state_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "instance_health",
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("checked_at", UTCDateTime(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("access_token_expires_at", UTCDateTime(), nullable=True),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["instance_id"], ["instance.id"]),
        sa.PrimaryKeyConstraint("instance_id"),
    )


def downgrade() -> None:
    op.drop_table("instance_health")
    with op.batch_alter_table("oauth_state", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_state_expires_at"))
        batch_op.drop_index(batch_op.f("ix_oauth_state_instance_id"))
        batch_op.drop_index(batch_op.f("ix_oauth_state_user_id"))
    op.drop_table("oauth_state")
    with op.batch_alter_table("user_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_session_user_id"))
    op.drop_table("user_session")
    with op.batch_alter_table("portal_user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_portal_user_distributor_id"))
        batch_op.drop_index(batch_op.f("ix_portal_user_email"))
    op.drop_table("portal_user")
