"""The migrations are the schema: they must build exactly what the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import bss.models  # noqa: F401
from bss.db import get_engine


def test_migrated_database_matches_the_models(database_url):
    with get_engine(database_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []
