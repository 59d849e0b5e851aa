"""`bss backup` and `bss restore`: one moment of a busy database, every row back as it was on
SQLite or PostgreSQL, secrets only as ciphertext, and a restore that refuses before changing
anything when a key is missing or the database holds data.

PostgreSQL targets run when BSS_TEST_DATABASE_URL is set (the CI's second pass).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel

from bss import migrate
from bss.crypto import Vault, generate_key, key_id
from bss.db import get_engine
from bss.models import (
    ApiKey,
    Distributor,
    Instance,
    InstanceHealth,
    InstanceStatus,
    Job,
    JobEvent,
    JobSecret,
    utcnow,
)
from bss.tools import encrypted_columns
from bss.tools.backup import MANIFEST, NULL_FLAG, BackupError, write_backup
from bss.tools.restore import BackupArchive, check, restore

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "client secret": "GOCSPX-client-secret-of-acme",
    "refresh token": "1//0refresh-token-of-acme-kept-by-google",
    "webhook secret": "whsec_webhook-secret-of-acme",
    "admin password": "Admin-password-4-acme!",
}


@pytest.fixture
def new_database(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Makes empty databases (no schema): "sqlite" a file not yet there, "postgresql" a new
    database on BSS_TEST_DATABASE_URL's server (skipped without it); dropped afterwards."""
    made: list[str] = []
    server = os.environ.get("BSS_TEST_DATABASE_URL")
    admin = create_engine(server, isolation_level="AUTOCOMMIT") if server else None

    def make(kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.db'}"
        if admin is None:
            pytest.skip("PostgreSQL: set BSS_TEST_DATABASE_URL")
        name = f"bss_restore_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return make_url(server).set(database=name).render_as_string(hide_password=False)

    yield make
    if admin is not None:
        for name in made:
            get_engine(
                make_url(server).set(database=name).render_as_string(hide_password=False)
            ).dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def seed(url: str, vault: Vault, *, jobs: int = 3, old_vault: Vault | None = None) -> None:
    """A distributor with a webhook, an authenticated instance, an API key, jobs with timelines
    and a secret, a health check: every kind of column, JSON's null beside SQL NULL."""
    now = utcnow()
    with Session(get_engine(url)) as s:
        d = Distributor(
            name="Acme Cloud",
            slug=f"acme-{uuid.uuid4().hex[:6]}",
            webhook_url="https://billing.example/hooks",
            webhook_secret_enc=vault.encrypt(SECRETS["webhook secret"]),
            weight=2.5,
        )
        s.add(d)
        s.flush()
        assert d.id is not None
        inst = Instance(
            distributor_id=d.id,
            name="main",
            client_id="123-abc.apps.googleusercontent.com",
            client_secret_enc=vault.encrypt(SECRETS["client secret"]),
            # an older key's ciphertext, as before `bss keys rotate` finished
            refresh_token_enc=(old_vault or vault).encrypt(SECRETS["refresh token"]),
            status=InstanceStatus.AUTHENTICATED,
            authenticated_as="admin@reseller.example",
            authenticated_at=now - timedelta(days=3),
            quotas={"reseller": 2.5},
            last_reconcile=None,  # JSON's null
        )
        s.add(inst)
        s.flush()
        assert inst.id is not None
        s.add(ApiKey(distributor_id=d.id, prefix="bss_abc", key_hash=uuid.uuid4().hex))
        s.add(InstanceHealth(instance_id=inst.id, ok=True, results=[{"check": "refresh"}]))
        for i in range(jobs):
            job = Job(
                distributor_id=d.id,
                instance_id=inst.id,
                operation="customer.create",
                params={"domain": f"c{i}.example", "seats": i, "nested": {"ok": True, "x": None}},
                request_hash="h" * 64,
                result={"customerId": f"C0{i}"} if i else None,
                finished_at=now if i else None,
            )
            s.add(job)
            s.flush()
            s.add(JobEvent(job_id=job.id, kind="state", message="Accepted", data={"n": i}))
        s.add(
            JobSecret(
                job_id=job.id,
                name="admin.password",
                value_enc=vault.encrypt(SECRETS["admin password"]),
                reveal=True,
            )
        )
        s.commit()
    # SQL NULL in a JSON column, beside the JSON nulls the ORM writes
    with get_engine(url).begin() as conn:
        conn.execute(text("UPDATE instance SET last_reconcile = NULL"))


def contents(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table as Python values, JSON columns with whether they are SQL NULL."""
    out = {}
    with get_engine(url).connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            flags = [
                c.is_(None).label(NULL_FLAG + c.name)
                for c in table.columns
                if c.type.__class__.__name__ == "JSON"
            ]
            query = select(*table.columns, *flags).order_by(*table.primary_key.columns)
            out[table.name] = [tuple(r) for r in conn.execute(query)]
    return out


def secrets_of(url: str, vault: Vault) -> list[str]:
    values = []
    with get_engine(url).connect() as conn:
        for table, column in encrypted_columns():
            rows = conn.execute(text(f'SELECT "{column}" FROM "{table.name}"'))  # noqa: S608
            values += [vault.decrypt(r[0]) for r in rows if r[0]]
    return sorted(values)


@pytest.fixture
def keys() -> tuple[str, str]:
    """The current key and an older one still configured (rotation not yet run)."""
    return generate_key(), generate_key()


@pytest.fixture
def source_kind() -> str:
    """The database the backups are taken of (tests parametrize it)."""
    return "sqlite"


@pytest.fixture
def source(new_database: Callable[[str], str], keys: tuple[str, str], source_kind: str) -> str:
    url = new_database(source_kind)
    migrate.upgrade(url)
    seed(url, Vault([keys[0]]), old_vault=Vault([keys[1]]))
    return url


def bss(*args: str, url: str, keys: str, home: Path) -> subprocess.CompletedProcess[str]:
    """The `bss` command, as an operator runs it."""
    env = dict(
        os.environ,
        DATABASE_URL=url,
        BSS_SECRET_KEYS=keys,
        BSS_HOME=str(home),
        PYTHONPATH=str(ROOT),
    )
    return subprocess.run(
        [sys.executable, "-m", "bss", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=home,
    )


@pytest.mark.parametrize("source_kind", ["sqlite", "postgresql"])
def test_backup_while_jobs_are_written_is_one_moment(tmp_path, source, keys):
    # Given jobs written all the time, each with its three timeline lines in one transaction
    vault = Vault(list(keys))
    seed(source, vault, jobs=1500)
    stop, written = threading.Event(), [0]
    with get_engine(source).connect() as conn:
        row = conn.execute(text("SELECT id, distributor_id FROM instance ORDER BY id")).first()
    assert row is not None
    instance_id, distributor_id = row

    def writer() -> None:
        while not stop.is_set():
            with Session(get_engine(source)) as s:
                job = Job(
                    distributor_id=distributor_id,
                    instance_id=instance_id,
                    operation="customer.create",
                    params={"domain": "busy.example"},
                    request_hash="h" * 64,
                )
                s.add(job)
                s.flush()
                for n in range(3):
                    s.add(JobEvent(job_id=job.id, kind="state", message=f"line {n}"))
                s.commit()
            written[0] += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        # When backups are taken meanwhile
        archives = []
        for i in range(3):
            before = written[0]
            path = tmp_path / f"busy-{i}.zip"
            write_backup(get_engine(source), path, vault=vault)
            archives.append((path, written[0] - before))
    finally:
        stop.set()
        thread.join()
    # Then each holds whole jobs only: every job with its three lines, no line without its job
    assert sum(n for _, n in archives) > 0, "nothing was written during the backups"
    for path, _ in archives:
        with zipfile.ZipFile(path) as z:
            manifest = json.loads(z.read(MANIFEST))
            files = {
                t["name"]: [json.loads(line) for line in z.read(t["file"]).splitlines()]
                for t in manifest["tables"]
            }
        assert {t["name"]: t["rows"] for t in manifest["tables"]} == {
            name: len(rows) for name, rows in files.items()
        }
        jobs = {j["id"] for j in files["job"]}
        lines: dict[str, int] = {}
        for e in files["job_event"]:
            lines[e["job_id"]] = lines.get(e["job_id"], 0) + 1
        assert set(lines) == jobs
        busy = [j["id"] for j in files["job"] if j["params"] == '{"domain":"busy.example"}']
        assert {lines[j] for j in busy} <= {3}


@pytest.mark.parametrize(
    ("source_kind", "kind"),
    [("sqlite", "sqlite"), ("sqlite", "postgresql"), ("postgresql", "sqlite")],
)
def test_round_trip_keeps_every_row_and_secret(tmp_path, source, keys, new_database, kind):
    # Given a backup of an install
    vault = Vault(list(keys))
    archive_path = tmp_path / "backup.zip"
    summary = write_backup(get_engine(source), archive_path, vault=vault)
    assert summary.key_ids == sorted(key_id(k) for k in keys)
    assert summary.rows["job"] == 3 and summary.secrets == 4 and summary.unreadable == 0
    # When it is restored into a new, empty database
    target = new_database(kind)
    archive = BackupArchive(archive_path)
    check(archive, database_url=target, keys=list(keys))
    restored = restore(archive, database_url=target)
    archive.close()
    # Then every row is back as it was (datetimes, JSON and its null, booleans, floats)
    assert restored.rows == summary.rows
    assert restored.instances == {"authenticated": 1}
    assert contents(target) == contents(source)
    # And the secrets decrypt with the same keys to the same values
    assert secrets_of(target, vault) == sorted(SECRETS.values())
    # And new rows get new ids (PostgreSQL's sequences continue after the restored ones)
    with Session(get_engine(target)) as s:
        d = Distributor(name="Next", slug="next")
        s.add(d)
        s.commit()
        assert d.id == max(r[0] for r in contents(source)["distributor"]) + 1


def test_archive_holds_secrets_only_as_ciphertext(tmp_path, source, keys):
    path = tmp_path / "backup.zip"
    run = bss("backup", str(path), url=source, keys=",".join(keys), home=tmp_path)
    assert run.returncode == 0, run.stderr
    # The summary names the keys the secrets need, and says the keys are not in the archive
    assert key_id(keys[0]) in run.stdout and key_id(keys[1]) in run.stdout
    assert "keys are NOT in the archive" in run.stdout
    assert "bss keys list" in run.stdout
    # Readable by its owner only, and nothing left beside it
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".backup")] == []
    # Neither the archive's bytes nor any of its files, unpacked, hold a secret or a key
    with zipfile.ZipFile(path) as z:
        unpacked = b"".join(z.read(n) for n in z.namelist())
    everything = path.read_bytes() + unpacked
    found = [name for name, secret in SECRETS.items() if secret.encode() in everything]
    assert found == []
    assert not any(k.encode() in everything for k in keys)
    # (and the check can find something: the ciphertext and the Client ID are in it)
    with get_engine(source).connect() as conn:
        stored = conn.execute(text("SELECT refresh_token_enc FROM instance")).scalar()
    assert stored.encode() in unpacked
    assert b"123-abc.apps.googleusercontent.com" in unpacked


def test_restore_with_a_missing_key_changes_nothing_and_names_it(tmp_path, source, keys):
    path = tmp_path / "backup.zip"
    write_backup(get_engine(source), path, vault=Vault(list(keys)))
    # Given a fresh install that has the current key only, its database migrated and empty
    target = f"sqlite:///{tmp_path / 'fresh.db'}"
    migrate.upgrade(target)
    before = contents(target)
    # When the backup is restored there
    run = bss("restore", str(path), url=target, keys=keys[0], home=tmp_path)
    # Then it is refused, naming the missing key's id (only that one) and how to supply it
    assert run.returncode == 1
    assert key_id(keys[1]) in run.stderr and key_id(keys[0]) not in run.stderr
    assert "BSS_SECRET_KEYS" in run.stderr and "bss keys list" in run.stderr
    assert "Nothing was restored" in run.stderr
    # And the database is as it was
    assert contents(target) == before
    # And into a database not made yet, none is made
    missing = tmp_path / "never.db"
    run = bss("restore", str(path), url=f"sqlite:///{missing}", keys=keys[0], home=tmp_path)
    assert run.returncode == 1 and not missing.exists()


def test_restore_into_a_database_with_data_is_refused(tmp_path, source, keys, new_database):
    path = tmp_path / "backup.zip"
    write_backup(get_engine(source), path, vault=Vault(list(keys)))
    other = new_database("sqlite")
    migrate.upgrade(other)
    seed(other, Vault([keys[0]]), jobs=1)
    before = contents(other)
    with pytest.raises(BackupError) as refused:
        check(BackupArchive(path), database_url=other, keys=list(keys))
    assert "is not empty" in refused.value.message and "instance" in refused.value.message
    run = bss("restore", str(path), url=other, keys=",".join(keys), home=tmp_path)
    assert run.returncode == 1 and "is not empty" in run.stderr
    assert contents(other) == before


def test_restore_then_keys_rotate(tmp_path, source, keys):
    # Given a restored install, with both keys configured
    path = tmp_path / "backup.zip"
    assert bss("backup", str(path), url=source, keys=",".join(keys), home=tmp_path).returncode == 0
    target = f"sqlite:///{tmp_path / 'restored.db'}"
    run = bss("restore", str(path), url=target, keys=",".join(keys), home=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "1 authenticated" in run.stdout
    # When a new key is put first and `bss keys rotate` runs
    new = generate_key()
    run = bss("keys", "rotate", url=target, keys=",".join([new, *keys]), home=tmp_path)
    assert run.returncode == 0, run.stderr
    # Then the new key alone decrypts every secret, to the same values
    assert secrets_of(target, Vault([new])) == sorted(SECRETS.values())


def test_keys_list_prints_ids_only(tmp_path, keys):
    run = bss("keys", "list", url="sqlite://", keys=",".join(keys), home=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [key_id(keys[0]), "(encrypts", "new", "secrets)", key_id(keys[1])]
    assert not any(k in run.stdout for k in keys)
    run = bss("keys", "list", url="sqlite://", keys="", home=tmp_path)
    assert run.returncode == 1 and "No key configured" in run.stderr


def test_an_archive_from_an_older_schema_restores_and_is_upgraded(tmp_path, source, keys):
    # Given an archive taken at the revision before the newest (its tables as they were then)
    path = tmp_path / "backup.zip"
    write_backup(get_engine(source), path, vault=Vault(list(keys)))
    previous = "0008"
    old = older_archive(tmp_path, path, previous)
    # And a fresh database someone has already migrated to the newest revision
    target = f"sqlite:///{tmp_path / 'fresh.db'}"
    migrate.upgrade(target)
    # When it is restored
    archive = BackupArchive(old)
    check(archive, database_url=target, keys=list(keys))
    summary = restore(archive, database_url=target)
    # Then the rows are back and the schema is the newest
    assert summary.revision == previous and summary.head == migrate.head_revision()
    with get_engine(target).connect() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()
    assert contents(target)["job"] == contents(source)["job"]
    assert secrets_of(target, Vault(list(keys))) == sorted(SECRETS.values())


def older_archive(tmp_path: Path, path: Path, revision: str) -> Path:
    """The archive as a backup at `revision` would have written it: only the tables and columns
    that existed then."""
    scratch = f"sqlite:///{tmp_path / 'scratch.db'}"
    migrate.upgrade(scratch, revision)
    with get_engine(scratch).connect() as conn:
        schema = {
            t: {c["name"] for c in inspect(conn).get_columns(t)}
            for t in inspect(conn).get_table_names()
        }
    out = tmp_path / "older.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        manifest = json.loads(src.read(MANIFEST))
        kept = []
        for entry in manifest["tables"]:
            if entry["name"] not in schema:
                continue
            columns = [c for c in entry["columns"] if c["name"] in schema[entry["name"]]]
            names = [c["name"] for c in columns]
            lines = [
                json.dumps({n: json.loads(line)[n] for n in names}, separators=(",", ":")) + "\n"
                for line in src.read(entry["file"]).decode().splitlines()
            ]
            data = "".join(lines).encode()
            dst.writestr(entry["file"], data)
            kept.append({**entry, "columns": columns, "sha256": hashlib.sha256(data).hexdigest()})
        dst.writestr(MANIFEST, json.dumps({**manifest, "revision": revision, "tables": kept}))
    return out


def test_a_damaged_or_foreign_archive_is_refused(tmp_path, source, keys):
    path = tmp_path / "backup.zip"
    write_backup(get_engine(source), path, vault=Vault(list(keys)))
    target = f"sqlite:///{tmp_path / 'fresh.db'}"
    # Not a zip at all
    junk = tmp_path / "junk.zip"
    junk.write_text("hello")
    with pytest.raises(BackupError, match="is not a bss backup"):
        BackupArchive(junk)
    # A table file changed after the backup
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(damaged, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, data.replace(b"Acme Cloud", b"Evil Cloud"))
    with pytest.raises(BackupError, match="distributor is damaged"):
        check(BackupArchive(damaged), database_url=target, keys=list(keys))
    assert not (tmp_path / "fresh.db").exists()


def test_backup_of_a_database_behind_the_code_is_refused(tmp_path, new_database, keys):
    url = new_database("sqlite")
    migrate.upgrade(url, "0008")
    with pytest.raises(BackupError, match="run `bss db upgrade` first"):
        write_backup(get_engine(url), tmp_path / "b.zip", vault=Vault(list(keys)))
    assert list(tmp_path.glob("*b.zip*")) == []
