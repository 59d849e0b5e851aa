"""`bss distributors set`: a distributor's share of the workers (see bss.jobs.fairness).

A command of `bss distributors` (bss.tools.admin_cli), kept apart to keep that module short."""

from __future__ import annotations

import click

from bss.accounts import distributor_by_slug
from bss.db import session_scope
from bss.errors import BssError
from bss.jobs import fair_share, set_max_in_flight, set_weight
from bss.settings import get_settings

NO_CAP = ("none", "no", "off", "unlimited")


def _whole_or_none(_ctx: click.Context, _param: click.Parameter, value: str | None) -> object:
    if value is None:
        return None
    if value.strip().lower() in NO_CAP:
        return NO_CAP[0]
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a whole number: give the most jobs in flight (1 or more), "
            "or `none` to remove the cap."
        ) from None


@click.command("set")
@click.argument("slug")
@click.option(
    "--weight",
    type=float,
    default=None,
    help="Its share of the workers against the others' (1: an equal share, 2: twice it).",
)
@click.option(
    "--max-in-flight",
    callback=_whole_or_none,
    default=None,
    metavar="N|none",
    help="Most of its jobs sent to the workers at once; `none` removes the cap.",
)
def distributors_set(slug: str, weight: float | None, max_in_flight: object) -> None:
    """Set how distributor SLUG shares the workers with the others."""
    if weight is None and max_in_flight is None:
        raise click.UsageError("Give --weight, --max-in-flight, or both.")
    settings = get_settings()
    try:
        with session_scope(settings.database_url) as s:
            d = distributor_by_slug(s, slug)
            if weight is not None:
                set_weight(s, d, weight)
            if max_in_flight is not None:
                set_max_in_flight(s, d, max_in_flight if isinstance(max_in_flight, int) else None)
            share = fair_share(settings.fair_share_slots, d.weight, d.max_in_flight)
            cap = "no cap" if d.max_in_flight is None else f"at most {d.max_in_flight}"
    except BssError as exc:
        raise click.ClickException(exc.message) from exc
    runs = "as many as are queued" if share is None else f"{share} at a time"
    click.echo(
        f"Distributor {slug}: weight {d.weight:g}, {cap} in flight; its jobs are sent to the "
        f"workers {runs} (BSS_FAIR_SHARE_SLOTS={settings.fair_share_slots})."
    )
