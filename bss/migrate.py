"""Schema migrations with Alembic: `bss db upgrade` and the demo and tests all go through here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command, op
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text

from bss.db import get_engine, refresh_statistics

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """An Alembic config for our migrations against `database_url`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database schema up to `revision`, and the planner's statistics up to date (a
    new index has none, and SQLite chooses badly without them)."""
    command.upgrade(alembic_config(database_url), revision)
    refresh_statistics(database_url)


def downgrade(database_url: str, revision: str) -> None:
    """Take the database schema back to `revision` (restore does so only on empty tables)."""
    command.downgrade(alembic_config(database_url), revision)


def move_to(database_url: str, revision: str) -> None:
    """Upgrade or downgrade the schema to exactly `revision`."""
    with get_engine(database_url).connect() as conn:
        current = current_revision(conn)
    if current == revision:
        return
    if current is not None and any(
        r.revision == revision for r in _scripts().iterate_revisions(current, "base")
    ):
        downgrade(database_url, revision)
    else:
        upgrade(database_url, revision)


def head_revision() -> str:
    """The newest revision this code knows."""
    head = _scripts().get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head


def is_known_revision(revision: str) -> bool:
    """Whether `revision` is one of this code's migrations (a newer code's is not)."""
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def current_revision(connection: Connection) -> str | None:
    """The revision the database on `connection` is at; None before the first migration."""
    return MigrationContext.configure(connection).get_current_revision()


def revision(database_url: str, message: str) -> None:
    """Autogenerate a new migration from the models (a developer's tool)."""
    command.revision(alembic_config(database_url), message=message, autogenerate=True)


def create_index_online(name: str, table: str, columns: list[str], **kw: Any) -> None:
    """In a migration: create an index without stopping writes to a big table. On PostgreSQL,
    CREATE INDEX CONCURRENTLY, outside the migration's transaction (what came before it is
    committed first); an index a failed build left INVALID is dropped and built again, one
    already valid is kept. Elsewhere (SQLite has one writer anyway), CREATE INDEX."""
    if op.get_bind().dialect.name != "postgresql":
        op.create_index(name, table, columns, **kw)
        return
    with op.get_context().autocommit_block():
        invalid = op.get_bind().execute(
            text(
                "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = :name AND c.relkind = 'i' AND NOT i.indisvalid"
            ),
            {"name": name},
        )
        if invalid.first() is not None:
            op.drop_index(name, table_name=table, postgresql_concurrently=True)
        op.create_index(
            name, table, columns, postgresql_concurrently=True, if_not_exists=True, **kw
        )


def drop_index_online(name: str, table: str) -> None:
    """In a migration: drop an index without stopping writes to its table (on PostgreSQL,
    DROP INDEX CONCURRENTLY, outside the migration's transaction)."""
    if op.get_bind().dialect.name != "postgresql":
        op.drop_index(name, table_name=table)
        return
    with op.get_context().autocommit_block():
        op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
