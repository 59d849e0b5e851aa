"""`bss reconcile` and `bss instances events`: Google's notifications from a shell.

`bss reconcile DISTRIBUTOR/INSTANCE` compares Google with our mirror now and prints what it
found; `bss instances events REF push|pull|off` registers an instance for notifications. Kept
apart from bss.tools.admin_cli to keep that module short.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import click

from bss.db import session_scope
from bss.errors import BssError
from bss.events import EVENT_MODES, ReconcileReport, reconcile, register_events
from bss.instances import find_instance
from bss.models import Distributor, iso
from bss.settings import Settings, get_settings

log = logging.getLogger(__name__)


def _webhook_sender(settings: Settings) -> Callable[[str], None] | None:
    """Send recorded webhook deliveries to the workers now (the sweep re-sends any not sent)."""
    from bss.broker import make_broker, send_webhook

    try:
        broker = make_broker(settings)
    except BssError:
        return None

    def send(delivery_id: str) -> None:
        try:
            send_webhook(broker, delivery_id)
        except Exception as exc:  # the delivery is recorded: the scheduler's sweep sends it
            log.warning("webhook %s not sent now (%s): the sweep will", delivery_id, exc)

    return send


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def print_report(report: ReconcileReport) -> None:
    """The differences a reconciliation found, in lines an operator reads."""
    methods = ", ".join(f"{m} {n}" for m, n in sorted(report.calls_by_method.items()))
    click.echo(
        f"Reconciled {report.instance} in {report.duration_s:.2f}s: "
        f"{report.calls} Google call{'s' if report.calls != 1 else ''}"
        f"{f' ({methods})' if methods else ''}; {_count(report.customers, 'customer')}, "
        f"{_count(report.subscriptions, 'subscription')}."
    )
    click.echo(f"\nChanges no notification had told us: {len(report.missed) or 'none'}")
    for c in report.missed:
        click.echo(
            f"  {c.customer_domain or c.customer_id}  {c.sku_id or '-'}  {c.field}: "
            f"{_value(c.before)} -> {_value(c.after)}"
        )
    click.echo(
        f"\nOpen drift (billing's desired state against Google): {len(report.drift) or 'none'}"
        f" ({report.opened} opened, {report.cleared} cleared by this run)"
    )
    for d in report.drift:
        by = f" (set by job {d.desired_job_id})" if d.desired_job_id else ""
        click.echo(
            f"  {d.id}  {d.customer_domain or d.customer_id}  {d.sku_id or '-'}  {d.field}: "
            f"ours {_value(d.desired)}{by}, Google's {_value(d.actual)}"
        )


@click.command("reconcile")
@click.argument("instance")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def reconcile_command(instance: str, as_json: bool) -> None:
    """Compare what Google holds for INSTANCE's customers (DISTRIBUTOR/NAME) with our mirror now:
    print the changes notifications missed, the open drift and the Google calls it took.
    Nothing at Google is changed; billing hears of changes by webhook as from events."""
    settings = get_settings()
    try:
        with session_scope(settings.database_url) as s:
            instance_id = find_instance(s, instance).id
        assert instance_id is not None
        report = reconcile(settings, instance_id, send_webhook=_webhook_sender(settings))
    except BssError as exc:
        raise click.ClickException(exc.message) from exc
    if as_json:
        body = asdict(report)
        body["started_at"] = iso(report.started_at)
        click.echo(json.dumps(body, indent=2, default=str))
        return
    print_report(report)


@click.command("events")
@click.argument("instance")
@click.argument("mode", type=click.Choice(EVENT_MODES, case_sensitive=False))
def instances_events(instance: str, mode: str) -> None:
    """Register INSTANCE for Google's notifications: push (Google posts each change to our
    public URL), pull (the scheduler fetches them; no public URL needed) or off. Example:
    bss instances events acme/main push"""
    settings = get_settings()
    try:
        with session_scope(settings.database_url) as s:
            found = register_events(s, settings, find_instance(s, instance), mode.lower())
            distributor = s.get(Distributor, found.distributor_id)
            ref = f"{distributor.slug if distributor else found.distributor_id}/{found.name}"
            error, state = found.events_error, found.events_mode
            subscription, topic = found.events_subscription, found.events_topic
    except BssError as exc:
        lines = [exc.message] + ([exc.hint] if exc.hint else [])
        raise click.ClickException(" ".join(lines)) from exc
    if error:
        raise click.ClickException(f"Instance {ref}: {error}")
    if state == "off":
        click.echo(f"Instance {ref}: notifications off. Reconciliation still runs on schedule.")
        return
    where = f"pushed to {settings.push_url}" if state == "push" else "pulled by the scheduler"
    click.echo(
        f"Instance {ref}: notifications {state}: Google's topic {topic}, {where} through "
        f"{subscription}."
    )
