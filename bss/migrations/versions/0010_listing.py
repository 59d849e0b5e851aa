"""listing: indexes for the dashboard's charts and for walking jobs of some states (bulk
actions, /metrics)

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

from bss.migrate import create_index_online, drop_index_online

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    # Jobs finished in a window, by state and distributor: the charts read the index alone.
    "ix_job_state_finished": ["state", "finished_at", "distributor_id"],
    # A bulk action walks each state newest first, here with an operation filter (and /metrics
    # counts jobs by state and operation)...
    "ix_job_state_operation": ["state", "operation", "created_at", "id"],
    # ... or an instance filter: this one replaces (state, instance_id), which still serves
    # the jobs waiting per instance.
    "ix_job_state_instance_created": ["state", "instance_id", "created_at", "id"],
}
REPLACED = {"ix_job_state_instance": ["state", "instance_id"]}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        create_index_online(name, "job", columns)
    for name in REPLACED:
        drop_index_online(name, "job")


def downgrade() -> None:
    for name, columns in REPLACED.items():
        create_index_online(name, "job", columns)
    for name in INDEXES:
        drop_index_online(name, "job")
