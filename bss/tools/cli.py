"""The `bss` command."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

import click

from bss.settings import get_settings


@click.group()
def main() -> None:
    """Google Workspace reseller provisioning: web, workers, scheduler, sandbox and tools."""


def _log_at(level: int) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")


@main.command()
@click.option("--port", default=8000, show_default=True, help="Port of the web app.")
@click.option("--sandbox-port", default=8765, show_default=True, help="Port of the sandbox.")
@click.option("--worker-threads", default=4, show_default=True)
def demo(port: int, sandbox_port: int, worker_threads: int) -> None:
    """Run everything locally: embedded Redis, SQLite, the sandbox, web, worker, scheduler."""
    from bss.tools.demo import run_demo

    _log_at(logging.WARNING)  # the banner is the demo's output; the processes log to files
    run_demo(get_settings(), port=port, sandbox_port=sandbox_port, worker_threads=worker_threads)


@main.command()
@click.option(
    "--scenario",
    type=click.Choice(["throughput", "chaos"]),
    default="throughput",
    show_default=True,
    help="throughput: customer.create jobs on a calm stack. chaos: order.create jobs while "
    "workers are SIGKILLed, Redis is flushed and restarted and Google fails at random; "
    "exits 1 when a job was lost, duplicated or misreported.",
)
@click.option("--jobs", default=None, type=int, help="Orders to submit [200; chaos: 1000].")
@click.option("--concurrency", default=8, show_default=True, help="Concurrent API clients.")
@click.option("--worker-processes", default=None, type=int, help="[1; chaos: 2]")
@click.option("--worker-threads", default=8, show_default=True)
@click.option(
    "--google-latency", default=0.05, show_default=True, help="throughput: seconds per Google call."
)
@click.option("--kills", default=64, show_default=True, help="chaos: workers to SIGKILL.")
@click.option("--timeout", default=1500.0, show_default=True, help="chaos: seconds to wait.")
def bench(
    scenario: str,
    jobs: int | None,
    concurrency: int,
    worker_processes: int | None,
    worker_threads: int,
    google_latency: float,
    kills: int,
    timeout: float,
) -> None:
    """Start a throw-away local stack, push JOBS orders through it, print the figures."""
    _log_at(logging.WARNING)
    if scenario == "chaos":
        from bss.tools.chaos import run_chaos

        ok = run_chaos(
            orders=jobs or 1000,
            concurrency=concurrency,
            worker_processes=worker_processes or 2,
            worker_threads=worker_threads,
            kills=kills,
            timeout=timeout,
        )
        sys.exit(0 if ok else 1)
    from bss.tools.bench import run_bench

    run_bench(
        jobs=jobs or 200,
        concurrency=concurrency,
        worker_processes=worker_processes or 1,
        worker_threads=worker_threads,
        google_latency=google_latency,
    )


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the migrations up to REVISION."""
    from bss import migrate

    migrate.upgrade(get_settings().database_url, revision)
    click.echo(f"Database at {revision}.")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True)
@click.option("--state", "state_file", default=None, help="Keep the sandbox's state in FILE.")
def sandbox(host: str, port: int, state_file: str | None) -> None:
    """Run the local stand-in for Google's OAuth and Workspace APIs."""
    from bss.sandbox import serve

    _log_at(logging.INFO)
    serve(host, port, state_file=state_file)


@main.command()
@click.option("--processes", default=1, show_default=True)
@click.option("--threads", default=4, show_default=True)
def worker(processes: int, threads: int) -> None:
    """Run Dramatiq workers (the same as `dramatiq workers`)."""
    argv = [
        sys.executable,
        "-m",
        "dramatiq",
        "workers",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
    ]
    os.execv(sys.executable, argv)  # noqa: S606 (becomes the dramatiq process)


@main.command()
def scheduler() -> None:
    """Run the periodic sweep that re-sends jobs whose message was lost."""
    from bss.broker import make_broker, send_job, send_webhook
    from bss.jobs import sweep_forever

    _log_at(logging.INFO)
    settings = get_settings()
    broker = make_broker(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"Scheduler sweeping every {settings.sweep_interval_seconds:g}s.")
    sweep_forever(
        settings,
        lambda job_id: send_job(broker, job_id),
        stop,
        send_webhook=lambda delivery_id: send_webhook(broker, delivery_id),
    )


@main.group("api-keys")
def api_keys() -> None:
    """Billing API keys."""


@api_keys.command("create")
@click.argument("distributor")
@click.option("--label", default="", help="What the key is for.")
def api_keys_create(distributor: str, label: str) -> None:
    """Create an API key for DISTRIBUTOR (its slug); the key is shown once."""
    from bss.accounts import create_api_key, distributor_by_slug
    from bss.db import session_scope

    with session_scope(get_settings().database_url) as s:
        key = create_api_key(s, distributor=distributor_by_slug(s, distributor), label=label)
    click.echo(key)


@api_keys.command("list")
@click.argument("distributor")
def api_keys_list(distributor: str) -> None:
    """List DISTRIBUTOR's API keys (prefix, label, created, last used, revoked)."""
    from bss.accounts import distributor_by_slug, list_api_keys
    from bss.db import session_scope
    from bss.models import iso

    with session_scope(get_settings().database_url) as s:
        for k in list_api_keys(s, distributor=distributor_by_slug(s, distributor)):
            state = f"revoked {iso(k.revoked_at)}" if k.revoked_at else "active"
            used = iso(k.last_used_at) or "never"
            click.echo(
                f"{k.id}\t{k.prefix}…\t{k.label or '-'}\t{iso(k.created_at)}\t{used}\t{state}"
            )


@api_keys.command("revoke")
@click.argument("distributor")
@click.argument("key")
def api_keys_revoke(distributor: str, key: str) -> None:
    """Revoke DISTRIBUTOR's API key KEY (its id or its prefix, as `list` shows them)."""
    from bss.accounts import distributor_by_slug, revoke_api_key
    from bss.db import session_scope
    from bss.errors import BssError

    try:
        with session_scope(get_settings().database_url) as s:
            k = revoke_api_key(s, distributor=distributor_by_slug(s, distributor), key_id=key)
            click.echo(f"Revoked API key {k.id} ({k.prefix}…).")
    except BssError as exc:
        raise click.ClickException(exc.message) from exc


@main.group()
def webhooks() -> None:
    """Webhooks to a distributor's billing system."""


@webhooks.command("set")
@click.argument("distributor")
@click.argument("url")
@click.option("--secret", default=None, help="Signing secret (default: a new one, shown once).")
def webhooks_set(distributor: str, url: str, secret: str | None) -> None:
    """Send DISTRIBUTOR's job and instance events to URL, signed with a secret."""
    from bss.accounts import distributor_by_slug
    from bss.crypto import vault_from_settings
    from bss.db import session_scope
    from bss.errors import BssError
    from bss.notify import configure_webhook

    settings = get_settings()
    try:
        with session_scope(settings.database_url) as s:
            shown = configure_webhook(
                s,
                settings=settings,
                distributor=distributor_by_slug(s, distributor),
                vault=vault_from_settings(settings),
                url=url,
                secret=secret,
            )
    except BssError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"Webhook set. Signing secret (shown once): {shown}")


@main.group()
def distributors() -> None:
    """Distributors (tenants)."""


@distributors.command("create")
@click.argument("name")
@click.option("--slug", default=None)
def distributors_create(name: str, slug: str | None) -> None:
    """Create a distributor called NAME."""
    from bss.accounts import create_distributor
    from bss.db import session_scope

    with session_scope(get_settings().database_url) as s:
        d = create_distributor(s, name=name, slug=slug)
        click.echo(f"Created distributor {d.slug}.")


@main.group()
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


@main.group()
def users() -> None:
    """Portal users."""


@users.command("create")
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice(["operator", "distributor_admin", "viewer"]),
    default="operator",
    show_default=True,
)
@click.option(
    "--distributor",
    default=None,
    help="Slug of a distributor admin's distributor (a viewer's: read-only of it; else of all).",
)
@click.option("--name", default="", help="The user's name.")
@click.option("--google-only", is_flag=True, help="No password: Sign in with Google only.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (no prompt)."
)
def users_create(
    email: str,
    role: str,
    distributor: str | None,
    name: str,
    google_only: bool,
    password_stdin: bool,
) -> None:
    """Create a portal user with e-mail address EMAIL (the first one: an operator)."""
    from bss.accounts import create_user, distributor_by_slug
    from bss.db import session_scope
    from bss.errors import BssError

    password: str | None = None
    if password_stdin:
        # Click 8.5 deprecates get_text_stream and serves it from a module __getattr__ typed
        # as returning object.
        stream = click.get_text_stream("stdin")  # type: ignore[operator]
        password = stream.readline().rstrip("\n")
    elif not google_only:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with session_scope(get_settings().database_url) as s:
            d = distributor_by_slug(s, distributor) if distributor else None
            user = create_user(
                s, email=email, role=role, distributor=d, password=password, name=name
            )
            if role == "viewer" and d is not None:  # create_user keeps one only for admins
                user.distributor_id = d.id
            click.echo(f"Created {user.role} {user.email}.")
    except BssError as exc:
        raise click.ClickException(exc.message) from exc


@main.command()
@click.argument("instance")
def doctor(instance: str) -> None:
    """Check INSTANCE (DISTRIBUTOR/NAME, a name, or an id): refresh, scopes, APIs, reseller
    access; each failure says what to fix. Exits 1 when a check fails."""
    from bss.crypto import vault_from_settings
    from bss.db import session_scope
    from bss.errors import BssError
    from bss.instances import check_instance, find_instance

    settings = get_settings()
    try:
        with session_scope(settings.database_url) as s:
            found = find_instance(s, instance)
            results = check_instance(
                s, settings=settings, vault=vault_from_settings(settings), instance=found
            )
    except BssError as exc:
        raise click.ClickException(exc.message) from exc
    for r in results:
        click.echo(f"{'PASS' if r.ok else 'FAIL'}  {r.name}: {r.detail}")
        if r.fix:
            click.echo(f"      Fix: {r.fix}")
        if r.link:
            click.echo(f"      {r.link}")
    if not all(r.ok for r in results):
        sys.exit(1)
