"""`bss restore FILE`: a backup (`bss.tools.backup`) into a fresh install, with its credentials.

Everything is checked before anything changes: the archive is whole (each table's checksum and
rows), this code knows its schema revision, the database is empty, and every key that encrypts
its secrets is configured. Then the schema is built at the archive's revision, every row goes in
in one transaction, PostgreSQL's id sequences continue after the restored ids, and the schema is
upgraded to this code's newest. The secrets stay the ciphertext they were: with the same keys,
every instance is still authenticated and its next job runs without a new consent.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    Numeric,
    String,
    TableClause,
    column,
    func,
    insert,
    inspect,
    select,
    table,
    text,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.types import TypeEngine
from sqlmodel import SQLModel

from bss import migrate
from bss.crypto import key_id
from bss.db import get_engine
from bss.tools.backup import (
    BATCH,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    BackupError,
    column_kind,
    decode,
)

GENERIC: dict[str, TypeEngine[Any]] = {
    "bool": Boolean(),
    "int": Integer(),
    "float": Float(),
    "decimal": Numeric(),
    "datetime": DateTime(timezone=True),
    "date": Date(),
    "bytes": LargeBinary(),
    "str": String(),
}
# JSON columns take None as SQL NULL and JSON.NULL as JSON's null, as they were archived.
RESTORED_JSON = JSON(none_as_null=True)


@dataclass
class RestoreSummary:
    """What `bss restore` did."""

    revision: str
    head: str
    database: str
    rows: dict[str, int]
    key_ids: list[str]
    instances: dict[str, int] = field(default_factory=dict)


class BackupArchive:
    """An archive opened for restore: its manifest read and its format known."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.zip = zipfile.ZipFile(self.path)
            self.manifest: dict[str, Any] = json.loads(self.zip.read(MANIFEST))
        except FileNotFoundError as exc:
            raise BackupError(f"No file {self.path}.") from exc
        except (OSError, zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise BackupError(
                f"{self.path} is not a bss backup (made by `bss backup`), or is damaged: {exc}"
            ) from exc
        if self.manifest.get("format") != FORMAT:
            raise BackupError(f"{self.path} is not a bss backup (made by `bss backup`).")
        version = self.manifest.get("version")
        if version != FORMAT_VERSION:
            raise BackupError(
                f"{self.path} is a backup in format {version}; this bss reads format "
                f"{FORMAT_VERSION}: restore it with the bss version that made it."
            )

    @property
    def revision(self) -> str:
        return str(self.manifest["revision"])

    @property
    def tables(self) -> list[dict[str, Any]]:
        return list(self.manifest["tables"])

    def lines(self, entry: dict[str, Any]) -> Any:
        """The table's rows, one JSON text each."""
        with self.zip.open(entry["file"]) as f:
            yield from f

    def close(self) -> None:
        self.zip.close()


def configured_key_ids(keys: list[str]) -> set[str]:
    """The ids of the keys this install would decrypt with."""
    return {key_id(k) for k in keys}


def check(archive: BackupArchive, *, database_url: str, keys: list[str]) -> None:
    """Refuse, naming every problem at once, unless the restore can run to the end; changes
    nothing."""
    problems = _archive_problems(archive) + _database_problems(archive, database_url)
    missing = sorted(set(archive.manifest["key_ids"]) - configured_key_ids(keys))
    if missing:
        problems.append(
            f"Its secrets are encrypted with {_keys(missing)} that this install does not have: "
            + ", ".join(missing)
            + ". Put each missing key in BSS_SECRET_KEYS (comma-separated, the current key "
            "first), then run `bss restore` again; `bss keys list` shows the ids of the keys "
            "configured here."
        )
    if problems:
        raise BackupError(f"Nothing was restored from {archive.path}:\n- " + "\n- ".join(problems))


def _keys(ids: list[str]) -> str:
    return "a key" if len(ids) == 1 else f"{len(ids)} keys"


def _archive_problems(archive: BackupArchive) -> list[str]:
    if not migrate.is_known_revision(archive.revision):
        return [
            f"The backup's schema is at revision {archive.revision}, newer than this bss "
            f"(at {migrate.head_revision()}): restore it with that bss version or a newer one."
        ]
    problems = []
    for entry in archive.tables:
        digest, rows = hashlib.sha256(), 0
        try:
            for line in archive.lines(entry):
                digest.update(line)
                rows += 1
        except (KeyError, OSError, zipfile.BadZipFile) as exc:
            problems.append(f"The backup's table {entry['name']} cannot be read: {exc}")
            continue
        if digest.hexdigest() != entry["sha256"] or rows != entry["rows"]:
            problems.append(f"The backup's table {entry['name']} is damaged (checksum differs).")
    return problems


def _database_problems(archive: BackupArchive, database_url: str) -> list[str]:
    url = make_url(database_url)
    where = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return []  # a new file: empty (and not made before everything is checked)
    try:
        with get_engine(database_url).connect() as conn:
            names = [n for n in inspect(conn).get_table_names() if n != "alembic_version"]
            full = [
                n
                for n in names
                if conn.execute(select(text("1")).select_from(table(n)).limit(1)).first()
            ]
            current = migrate.current_revision(conn) if names else None
    except SQLAlchemyError as exc:
        return [f"The database at {where} cannot be read: {getattr(exc, 'orig', exc)}"]
    if full:
        return [
            f"The database at {where} is not empty ({', '.join(sorted(full)[:5])}"
            f"{' and more' if len(full) > 5 else ''} hold rows): restore only into an empty "
            "database. Create a new one (PostgreSQL: CREATE DATABASE; SQLite: a new file) and "
            "point DATABASE_URL at it."
        ]
    if current is not None and not migrate.is_known_revision(current):
        return [
            f"The (empty) database at {where} is at revision {current}, newer than this bss: "
            "use a new database."
        ]
    return []


def restore(archive: BackupArchive, *, database_url: str) -> RestoreSummary:
    """Build the schema at the archive's revision, insert every row in one transaction, then
    upgrade to this code's newest revision. Call `check` first."""
    migrate.move_to(database_url, archive.revision)
    engine = get_engine(database_url)
    rows: dict[str, int] = {}
    name = ""
    try:
        with engine.begin() as conn:
            for entry in archive.tables:
                name = entry["name"]
                rows[name] = _insert_rows(conn, archive, entry)
            name = ""
            if conn.dialect.name == "postgresql":
                _continue_sequences(conn, archive.tables)
    except SQLAlchemyError as exc:
        where = f" into table {name}" if name else ""
        raise BackupError(
            f"Restoring{where} failed: {getattr(exc, 'orig', None) or exc}. No row was restored "
            f"(the database holds the empty schema at revision {archive.revision}, so "
            "`bss restore` can run again once this is fixed)."
        ) from exc
    migrate.upgrade(database_url, "head")
    return RestoreSummary(
        revision=archive.revision,
        head=migrate.head_revision(),
        database=engine.dialect.name,
        rows=rows,
        key_ids=list(archive.manifest["key_ids"]),
        instances=_instances_by_status(engine),
    )


def _insert_rows(conn: Connection, archive: BackupArchive, entry: dict[str, Any]) -> int:
    target = _insert_target(entry)
    kinds = {c["name"]: c["kind"] for c in entry["columns"]}
    batch: list[dict[str, Any]] = []
    done = 0
    for line in archive.lines(entry):
        batch.append(_row(json.loads(line), kinds))
        if len(batch) >= BATCH:
            conn.execute(insert(target), batch)
            done, batch = done + len(batch), []
    if batch:
        conn.execute(insert(target), batch)
        done += len(batch)
    return done


def _insert_target(entry: dict[str, Any]) -> TableClause:
    """The table as the archive has it, each column typed as the models type it (so values are
    stored as the service stores them), or by its archived kind for a column since dropped."""
    model = SQLModel.metadata.tables.get(entry["name"])
    columns = []
    for c in entry["columns"]:
        name, kind = c["name"], c["kind"]
        known = model.columns.get(name) if model is not None else None
        if kind == "json":
            type_: TypeEngine[Any] = RESTORED_JSON
        elif known is not None and column_kind(known) == kind:
            type_ = known.type
        else:
            type_ = GENERIC[kind]
        columns.append(column(name, type_))
    return table(entry["name"], *columns)


def _row(record: dict[str, Any], kinds: dict[str, str]) -> dict[str, Any]:
    out = {}
    for name, kind in kinds.items():
        value = record.get(name)
        if kind == "json":
            loaded = None if value is None else json.loads(value)
            out[name] = None if value is None else JSON.NULL if loaded is None else loaded
        else:
            out[name] = decode(kind, value)
    return out


def _continue_sequences(conn: Connection, entries: list[dict[str, Any]]) -> None:
    """PostgreSQL hands out ids from a sequence that inserts with explicit ids do not move: set
    each to continue after the largest restored id."""
    quote = conn.dialect.identifier_preparer.quote
    for entry in entries:
        keys = entry["primary_key"]
        kinds = {c["name"]: c["kind"] for c in entry["columns"]}
        if len(keys) != 1 or kinds.get(keys[0]) != "int":
            continue
        name, key = entry["name"], keys[0]
        conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence(:t, :c), "  # noqa: S608 - quoted names
                f"COALESCE(MAX({quote(key)}), 0) + 1, false) FROM {quote(name)}"
            ),
            {"t": quote(name), "c": key},
        )


def _instances_by_status(engine: Engine) -> dict[str, int]:
    instance = SQLModel.metadata.tables["instance"]
    with engine.connect() as conn:
        rows = conn.execute(
            select(instance.c.status, func.count()).group_by(instance.c.status)
        ).all()
    return {str(status): n for status, n in rows}
