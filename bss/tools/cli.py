"""The `bss` command."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

import click

from bss.settings import get_settings
from bss.tools import admin_cli, admin_events, admin_fairness, admin_quotas, backup_cli


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Google Workspace reseller provisioning: web, workers, scheduler, sandbox and tools."""
    if ctx.invoked_subcommand not in ("demo", "bench"):
        # A demo running from this directory: its sandbox, Redis and URL, unless set here
        from pathlib import Path

        from bss.tools.demo_env import load_demo_env

        load_demo_env(Path(os.environ.get("BSS_HOME", "var")))


admin_cli.distributors.add_command(admin_fairness.distributors_set)
admin_cli.instances.add_command(admin_quotas.instances_set_quota)
admin_cli.instances.add_command(admin_events.instances_events)
main.add_command(admin_events.reconcile_command)
main.add_command(backup_cli.backup_command)
main.add_command(backup_cli.restore_command)
main.add_command(backup_cli.keys)
for _group in admin_cli.COMMANDS:
    main.add_command(_group)


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
    type=click.Choice(
        [
            "throughput",
            "chaos",
            "ordering",
            "kill",
            "license-bulk",
            "quota",
            "fairness",
            "sandbox-state",
            "reconcile",
            "events",
            "listing",
            "webhooks",
        ]
    ),
    default="throughput",
    show_default=True,
    help="throughput: customer.create jobs on a calm stack. chaos: order.create jobs while "
    "workers are SIGKILLed, Redis is flushed and restarted and Google fails at random; "
    "exits 1 when a job was lost, duplicated or misreported. ordering: 20 seat changes on one "
    "subscription per round (JOBS rounds), 30 % of them answered 503 first; exits 1 unless "
    "Google ends at the last one sent every round. kill: JOBS orders [600] on two worker "
    "processes, one SIGKILLed a third of the way. license-bulk: one license.assign for JOBS "
    "users [1000] at --quota calls/s [1]. quota: JOBS customer.create [300] while Google allows "
    "the demo project --quota Reseller API calls/s [5]; prints the share of the quota used and "
    "of calls answered 429. fairness: distributor A sends JOBS orders [2000], then B one; "
    "prints B's time against an idle stack and A's throughput against A's alone. "
    "sandbox-state: the sandbox's CPU per mutating call with --state at 10 customers and at "
    "10,000; exits 1 when the large state costs 1.5 times the small one or more. reconcile: the "
    "Google calls and time of one reconciliation of an instance with JOBS customers [1000] of "
    "one subscription each; exits 1 above 12 calls. events: JOBS seat changes [100] in the "
    "sandbox's Admin console, one per customer ordered first, over 5 s; prints the time to "
    "billing's subscription.changed webhook; exits 1 when one is missing or told twice, or "
    "p95 is over 60 s. listing: JOBS jobs [1,000,000] on SQLite, and on PostgreSQL with a "
    "postgresql:// --database-url or DATABASE_URL (a throw-away database on that server); p50 "
    "and p95 of every API and dashboard listing and the overview; exits 1 when a p95 is over "
    "100 ms. webhooks: JOBS webhook POSTs [2000] from --concurrency threads to an HTTPS receiver "
    "in another process, on kept-alive connections and on a new one per POST; our CPU per POST, "
    "POSTs/s and connections for each.",
)
@click.option("--jobs", default=None, type=int, help="Orders to submit [200; chaos: 1000].")
@click.option("--concurrency", default=8, show_default=True, help="Concurrent API clients.")
@click.option("--worker-processes", default=None, type=int, help="[1; chaos, fairness: 2]")
@click.option("--worker-threads", default=8, show_default=True)
@click.option(
    "--google-latency", default=0.05, show_default=True, help="throughput: seconds per Google call."
)
@click.option(
    "--runs", default=1, show_default=True, help="throughput: runs on one stack; medians printed."
)
@click.option(
    "--baseline",
    type=click.Choice(["none", "naive"]),
    default="none",
    show_default=True,
    help="throughput: then run the naive script (client built and token refreshed per order, "
    "one order at a time) against the same sandbox, and print the ratio.",
)
@click.option("--kills", default=64, show_default=True, help="chaos: workers to SIGKILL.")
@click.option("--timeout", default=1500.0, show_default=True, help="chaos: seconds to wait.")
@click.option(
    "--quota", default=None, type=float, help="Google calls/s allowed (license-bulk: 1, quota: 5)."
)
@click.option(
    "--database-url",
    default=None,
    help="listing: a PostgreSQL server to measure on too [DATABASE_URL when postgresql://].",
)
def bench(
    scenario: str,
    jobs: int | None,
    concurrency: int,
    worker_processes: int | None,
    worker_threads: int,
    google_latency: float,
    kills: int,
    timeout: float,
    quota: float | None,
    runs: int,
    baseline: str,
    database_url: str | None,
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
    if scenario == "ordering":
        from bss.tools.bench import run_ordering

        ok = run_ordering(
            rounds=jobs or 5, changes=20, worker_threads=worker_threads, failure_rate=0.3
        )
        sys.exit(0 if ok else 1)
    if scenario == "kill":
        from bss.tools.bench_flow import run_kill

        ok = run_kill(orders=jobs or 600, worker_threads=worker_threads, google_latency=0.1)
        sys.exit(0 if ok else 1)
    if scenario == "license-bulk":
        from bss.tools.bench_flow import run_license_bulk

        ok = run_license_bulk(
            users=jobs or 1000, per_second=quota or 1.0, worker_threads=worker_threads
        )
        sys.exit(0 if ok else 1)
    if scenario == "quota":
        from bss.tools.bench_quota import run_quota

        ok = run_quota(
            jobs=jobs or 300,
            per_second=quota or 5.0,
            worker_processes=worker_processes or 2,
            worker_threads=worker_threads,
            concurrency=concurrency,
        )
        sys.exit(0 if ok else 1)
    if scenario == "fairness":
        from bss.tools.bench_fairness import run_fairness

        ok = run_fairness(
            orders=jobs or 2000,
            concurrency=concurrency,
            worker_processes=worker_processes or 2,  # 16 threads: the default fair share
            worker_threads=worker_threads,
            google_latency=google_latency,
        )
        sys.exit(0 if ok else 1)
    if scenario == "reconcile":
        from bss.tools.bench_events import run_reconcile_bench

        sys.exit(0 if run_reconcile_bench(customers=jobs or 1000) else 1)
    if scenario == "events":
        from bss.tools.bench_events import run_events_bench

        ok = run_events_bench(changes=jobs or 100, worker_threads=worker_threads)
        sys.exit(0 if ok else 1)
    if scenario == "listing":
        from bss.tools.bench_listing import run_listing_bench

        url = database_url or os.environ.get("DATABASE_URL")
        sys.exit(0 if run_listing_bench(jobs=jobs or 1_000_000, database_url=url) else 1)
    if scenario == "webhooks":
        from bss.tools.bench_webhooks import run_webhooks_bench

        run_webhooks_bench(posts=jobs or 2000, threads=concurrency)
        return
    if scenario == "sandbox-state":
        from bss.tools.bench_sandbox import run_sandbox_state

        sys.exit(0 if run_sandbox_state() else 1)
    from bss.tools.bench_throughput import run_bench

    run_bench(
        jobs=jobs or 200,
        concurrency=concurrency,
        worker_processes=worker_processes or 1,
        worker_threads=worker_threads,
        google_latency=google_latency,
        runs=runs,
        baseline=baseline,
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
@click.option(
    "--issuer",
    default="https://accounts.google.com",
    show_default=True,
    help="The iss of the sandbox's id tokens and OIDC discovery document.",
)
@click.option("--smtp-port", type=click.IntRange(0, 65535), help="Gmail SMTP; 0: none [--port + 1]")
@click.option("--smtp-cert", metavar="FILE", help="Write the SMTP server's certificate to FILE.")
@click.option(
    "--push-threads",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Pub/Sub pushes under way at once.",
)
def sandbox(
    host: str, port: int, state_file: str | None, issuer: str, push_threads: int, **smtp: int | str
) -> None:
    """Run the local stand-in for Google's OAuth, Workspace APIs and Gmail SMTP."""
    from bss.sandbox import serve

    _log_at(logging.INFO)
    serve(host, port, state_file=state_file, issuer=issuer, push_threads=push_threads, **smtp)  # type: ignore[arg-type]


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
    """Run the periodic sweep that re-sends jobs whose message was lost, Google's
    notifications' share (pulls, scheduled reconciliations, events a worker never took), and
    e-mail's (alerts, reminders, digests, expiring tokens, mail a worker never took)."""
    from bss.broker import (
        describe_broker,
        make_broker,
        send_google_event,
        send_job,
        send_mail,
        send_webhook,
    )
    from bss.events import events_forever
    from bss.jobs import sweep_forever
    from bss.notify import notify_forever

    _log_at(logging.INFO)
    settings = get_settings()
    broker = make_broker(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(
        f"Scheduler sweeping every {settings.sweep_interval_seconds:g}s; "
        f"broker: {describe_broker(settings)}."
    )
    # Google's notifications in a thread of their own: a long reconciliation never delays the
    # sweep that re-sends lost jobs.
    events = threading.Thread(
        target=events_forever,
        args=(settings, lambda event_id: send_google_event(broker, event_id), stop),
        kwargs={"send_webhook": lambda delivery_id: send_webhook(broker, delivery_id)},
        name="events",
        daemon=True,
    )
    events.start()
    # E-mail in a thread of its own too: a slow database round never delays the other two.
    mail = threading.Thread(
        target=notify_forever,
        args=(settings, lambda message_id: send_mail(broker, message_id), stop),
        name="notify",
        daemon=True,
    )
    mail.start()
    sweep_forever(
        settings,
        lambda job_id: send_job(broker, job_id),
        stop,
        send_webhook=lambda delivery_id: send_webhook(broker, delivery_id),
    )
    events.join(timeout=30)
    mail.join(timeout=30)


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
