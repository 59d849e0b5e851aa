"""A new, empty database for a test: on BSS_TEST_DATABASE_URL's PostgreSQL server (dropped
afterwards), or a SQLite file not yet made."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bss.db import get_engine


@contextmanager
def new_database(sqlite_file: Path, prefix: str) -> Iterator[str]:
    """The URL of a database no one has used: `sqlite_file`'s without a server, else one named
    `prefix` and a random tail on the server, dropped on the way out."""
    server = os.environ.get("BSS_TEST_DATABASE_URL")
    if not server:
        yield f"sqlite:///{sqlite_file}"
        return
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        get_engine(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
