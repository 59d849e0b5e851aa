"""`bss keys rotate`: re-encrypt every stored secret under the first key of BSS_SECRET_KEYS."""

from __future__ import annotations

from sqlalchemy import Table, select, update
from sqlmodel import Session, SQLModel

import bss.models  # noqa: F401 - registers every table in the metadata
from bss.crypto import Vault

# Encrypted columns are named `*_enc` by convention, so tables added later are covered too.
ENCRYPTED_SUFFIX = "_enc"
BATCH = 500


def encrypted_columns() -> list[tuple[Table, str]]:
    """Every (table, column) holding a secret encrypted by the vault."""
    return [
        (table, column.name)
        for table in SQLModel.metadata.sorted_tables
        for column in table.columns
        if column.name.endswith(ENCRYPTED_SUFFIX)
    ]


def rotate_secrets(session: Session, *, vault: Vault) -> dict[str, int]:
    """Re-encrypt each secret under the primary key, committing batch by batch; returns how many
    values per `table.column`. Every key keeps decrypting until this has finished, and a value
    changed meanwhile by another process is left as that process wrote it (already current)."""
    counts: dict[str, int] = {}
    for table, name in encrypted_columns():
        column = table.c[name]
        keys = list(table.primary_key.columns)
        rows = session.execute(select(*keys, column).where(column.is_not(None))).all()
        done = 0
        for i, row in enumerate(rows, 1):
            *ids, old = row
            new = vault.rotate(old)
            where = [k == v for k, v in zip(keys, ids, strict=True)]
            result = session.exec(update(table).where(*where, column == old).values({name: new}))
            done += result.rowcount
            if i % BATCH == 0:
                session.commit()
        session.commit()
        counts[f"{table.name}.{name}"] = done
    return counts
