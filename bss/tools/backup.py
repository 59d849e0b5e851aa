"""`bss backup FILE`: the whole database in a portable archive, taken while the service runs.

The archive is a zip file: `manifest.json` (the format, the schema's Alembic revision, when, the
database kind, each table's columns, rows and checksum, and the ids of the keys that encrypt the
stored secrets, never the keys) and one JSON-lines file per table, in foreign-key order. Every row
is read in one read-only transaction, so the archive is one moment of the database however busy
the workers are. Secrets (`*_enc` columns) are copied as stored: ciphertext. Values are written by
their column's kind, not by how one database stores them, so an archive of SQLite restores into
PostgreSQL and back (`bss.tools.restore`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Table,
    TypeDecorator,
    select,
)
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

import bss.models  # noqa: F401 - registers every table in the metadata
from bss import migrate
from bss.crypto import Vault
from bss.errors import BssError
from bss.tools.key_rotation import ENCRYPTED_SUFFIX

FORMAT = "bss-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TABLES_DIR = "tables"
BATCH = 1000
# The label of the extra "is this JSON column SQL NULL?" read beside each JSON column: SQL NULL
# and JSON's null both read back as None, and queries tell them apart.
NULL_FLAG = "__sql_null__"


class BackupError(BssError):
    """A backup or a restore could not be done; the message says why, what was left as it was,
    and what to do."""

    code = "backup"


def column_kind(column: Column[Any]) -> str:
    """How a column's values are written in the archive: json, datetime, date, bool, int, float,
    decimal, bytes or str."""
    t: Any = column.type
    while isinstance(t, TypeDecorator):
        t = t.impl_instance
    for kind, types in (
        ("bool", Boolean),
        ("int", Integer),
        ("float", Float),
        ("decimal", Numeric),
        ("datetime", DateTime),
        ("date", Date),
        ("json", JSON),
        ("bytes", LargeBinary),
        ("str", String),
    ):
        if isinstance(t, types):
            return kind
    raise TypeError(f"{column.table}.{column.name}: no archive form for {column.type!r}")


def encode(kind: str, value: Any, *, sql_null: bool = False) -> Any:
    """A column's value as JSON. A JSON column's value is its JSON text (None: SQL NULL), so
    JSON's own null survives as "null"."""
    if kind == "json":
        return None if sql_null else json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if value is None:
        return None
    if kind in ("datetime", "date"):
        return value.isoformat()
    if kind == "decimal":
        return str(value)
    if kind == "bytes":
        return base64.b64encode(value).decode()
    return value


def decode(kind: str, value: Any) -> Any:
    """The Python value of an archived one (JSON columns: see `bss.tools.restore`)."""
    if value is None:
        return None
    if kind == "datetime":
        return datetime.fromisoformat(value)
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "decimal":
        return Decimal(value)
    if kind == "bytes":
        return base64.b64decode(value)
    return value


@dataclass
class BackupSummary:
    """What `bss backup` wrote."""

    path: Path
    revision: str
    database: str
    rows: dict[str, int]
    key_ids: list[str]
    secrets: int
    unreadable: int


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """One read-only transaction: every SELECT in it sees the same moment of the database while
    other processes keep writing."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            # pysqlite begins a transaction only before a write, so each SELECT would see its own
            # moment: take the transaction over and BEGIN it here. WAL lets writers carry on.
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                conn.exec_driver_sql("ROLLBACK")
        else:
            conn = conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            with conn.begin():
                yield conn


def check_revision(conn: Connection) -> str:
    """The schema's revision, which must be this code's newest: the tables are read as the
    models describe them."""
    current, head = migrate.current_revision(conn), migrate.head_revision()
    if current is None:
        raise BackupError(
            "The database has no schema yet (run `bss db upgrade`): nothing to back up."
        )
    if current != head and not migrate.is_known_revision(current):
        raise BackupError(
            f"The database is at revision {current}, newer than this bss (at {head}): "
            "back it up with the bss version that migrated it."
        )
    if current != head:
        raise BackupError(
            f"The database is at revision {current} and this bss expects {head}: "
            "run `bss db upgrade` first, then `bss backup` again."
        )
    return current


def tables() -> list[Table]:
    """Every table the migrations create, parents before the rows that point at them."""
    return list(SQLModel.metadata.sorted_tables)


def write_backup(engine: Engine, path: Path, *, vault: Vault | None) -> BackupSummary:
    """Write the archive to `path` atomically (a temporary file beside it, renamed when complete),
    readable by its owner only. `vault` names the key of each secret (None: no key configured)."""
    path = Path(path)
    folder = path.resolve().parent
    if not folder.is_dir():
        raise BackupError(f"The folder {folder} does not exist: create it or choose another FILE.")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as raw:
            with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                with snapshot(engine) as conn:
                    manifest = _dump(conn, archive, vault)
                archive.writestr(MANIFEST, json.dumps(manifest, indent=2) + "\n")
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return BackupSummary(
        path=path,
        revision=manifest["revision"],
        database=manifest["database"],
        rows={t["name"]: t["rows"] for t in manifest["tables"]},
        key_ids=manifest["key_ids"],
        secrets=manifest["encrypted_values"],
        unreadable=manifest["unreadable_values"],
    )


def _dump(conn: Connection, archive: zipfile.ZipFile, vault: Vault | None) -> dict[str, Any]:
    revision = check_revision(conn)
    keys: Counter[str | None] = Counter()
    entries = [_dump_table(conn, archive, table, vault, keys) for table in tables()]
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "revision": revision,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "bss_version": _version(),
        "database": conn.dialect.name,
        "tables": entries,
        "key_ids": sorted(k for k in keys if k is not None),
        "encrypted_values": sum(keys.values()),
        "unreadable_values": keys[None],
    }


def _version() -> str:
    try:
        return metadata.version("bss")
    except metadata.PackageNotFoundError:
        return "unknown"


def _dump_table(
    conn: Connection,
    archive: zipfile.ZipFile,
    table: Table,
    vault: Vault | None,
    keys: Counter[str | None],
) -> dict[str, Any]:
    columns = list(table.columns)
    kinds = {c.name: column_kind(c) for c in columns}
    flags = [c.is_(None).label(NULL_FLAG + c.name) for c in columns if kinds[c.name] == "json"]
    secrets = [c.name for c in columns if c.name.endswith(ENCRYPTED_SUFFIX)]
    query = select(*columns, *flags).order_by(*table.primary_key.columns)
    name = f"{TABLES_DIR}/{table.name}.jsonl"
    digest, rows = hashlib.sha256(), 0
    with archive.open(name, "w", force_zip64=True) as out:
        for row in conn.execute(query.execution_options(yield_per=BATCH)):
            values = row._mapping
            record = {
                c: encode(kinds[c], values[c], sql_null=bool(values.get(NULL_FLAG + c)))
                for c in kinds
            }
            for c in secrets:
                if values[c]:
                    keys[vault.key_id_of(values[c]) if vault else None] += 1
            line = (json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
            digest.update(line)
            out.write(line)
            rows += 1
    return {
        "name": table.name,
        "file": name,
        "rows": rows,
        "sha256": digest.hexdigest(),
        "primary_key": [c.name for c in table.primary_key.columns],
        "columns": [{"name": c, "kind": k} for c, k in kinds.items()],
    }
