"""`bss backup`, `bss restore` and `bss keys` (generate, list, rotate): what an operator types to
keep an install's data and the keys of its secrets, and to bring both back on a fresh one."""

from __future__ import annotations

from pathlib import Path

import click

from bss.settings import get_settings


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup_command(file: Path) -> None:
    """Write a consistent archive of the database to FILE while the service runs.

    Secrets stay encrypted in it; the keys that decrypt them are not in it (keep
    BSS_SECRET_KEYS apart: a restore needs them). The archive names the keys it needs by id.
    """
    from bss.crypto import Vault, load_keys
    from bss.db import get_engine
    from bss.errors import BssError
    from bss.tools.backup import write_backup

    settings = get_settings()
    try:
        keys = load_keys(settings, create=False)
        vault = Vault(keys) if keys else None
        summary = write_backup(get_engine(settings.database_url), file, vault=vault)
    except BssError as exc:
        raise click.ClickException(exc.message) from exc
    rows = summary.rows
    click.echo(
        f"Backed up {_count(len(rows), 'table')}, {_count(sum(rows.values()), 'row')} "
        f"({summary.database}, schema revision {summary.revision}) to {summary.path}."
    )
    for name, n in rows.items():
        if n:
            click.echo(f"  {name}: {n:,}")
    needed = ", ".join(summary.key_ids) or "none"
    click.echo(f"{_count(summary.secrets, 'secret')}, encrypted under keys: {needed}.")
    if summary.unreadable:
        click.echo(
            f"Warning: {_count(summary.unreadable, 'secret')} cannot be decrypted with any key "
            "configured here (encrypted under a key since removed); they are archived as they are."
        )
    click.echo(
        "The keys are NOT in the archive. Keep BSS_SECRET_KEYS somewhere apart from it: a "
        "restore needs the keys above (`bss keys list` shows the ids of the configured keys)."
    )


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def restore_command(file: Path) -> None:
    """Restore the archive FILE into the empty database at DATABASE_URL.

    Everything is checked first (the archive, an empty database, every key the secrets need
    configured in BSS_SECRET_KEYS); on any problem nothing is changed. Restoring over data is
    refused: use a new database.
    """
    from bss.crypto import load_keys
    from bss.errors import BssError
    from bss.tools.restore import BackupArchive, check, restore

    settings = get_settings()
    try:
        try:
            keys = load_keys(settings, create=False)
        except BssError:
            keys = []  # production without BSS_SECRET_KEYS: every needed key is missing
        archive = BackupArchive(file)
        try:
            check(archive, database_url=settings.database_url, keys=keys)
            summary = restore(archive, database_url=settings.database_url)
        finally:
            archive.close()
    except BssError as exc:
        raise click.ClickException(exc.message) from exc
    rows = summary.rows
    click.echo(
        f"Restored {_count(sum(rows.values()), 'row')} into {_count(len(rows), 'table')} "
        f"({summary.database}) at schema revision {summary.revision}; the schema is now at "
        f"{summary.head}."
    )
    if summary.instances:
        click.echo(
            "Instances: "
            + ", ".join(f"{n} {status}" for status, n in sorted(summary.instances.items()))
            + "."
        )
    click.echo(
        "Start the web app, workers and scheduler with the same BSS_SECRET_KEYS; jobs that were "
        "under way at the time of the backup are taken up again by the scheduler's sweep."
    )


@click.group()
def keys() -> None:
    """Secret-encryption keys."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new key for BSS_SECRET_KEYS."""
    from bss.crypto import generate_key

    click.echo(generate_key())


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored secret under the first key of BSS_SECRET_KEYS.

    Put the new key first and keep the old ones after it; the old ones keep decrypting until
    this has finished, then they can be removed.
    """
    from bss.crypto import vault_from_settings
    from bss.db import session_scope
    from bss.tools.key_rotation import rotate_secrets

    settings = get_settings()
    with session_scope(settings.database_url) as s:
        counts = rotate_secrets(s, vault=vault_from_settings(settings))
    for column, n in counts.items():
        click.echo(f"{column}: {n} re-encrypted")
    click.echo(
        f"Done: {sum(counts.values())} secrets are under the first key; the other keys in "
        "BSS_SECRET_KEYS can now be removed."
    )


@keys.command("list")
def keys_list() -> None:
    """Print the ids of the configured keys (never the keys), the one that encrypts first."""
    from bss.crypto import Vault, load_keys
    from bss.errors import BssError

    try:
        keys = load_keys(get_settings(), create=False)
        ids = Vault(keys).key_ids if keys else []
    except BssError as exc:
        raise click.ClickException(exc.message) from exc
    if not ids:
        raise click.ClickException(
            "No key configured: set BSS_SECRET_KEYS (`bss keys generate` makes a key)."
        )
    for i, kid in enumerate(ids):
        click.echo(f"{kid}{'  (encrypts new secrets)' if i == 0 else ''}")
