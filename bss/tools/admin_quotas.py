"""`bss instances set-quota`: the Google quotas of an instance's Cloud project, API by API.

A command of `bss instances` (bss.tools.admin_cli), kept apart to keep that module short."""

from __future__ import annotations

import math

import click

from bss.db import session_scope
from bss.errors import BssError
from bss.gateway import PACED_APIS, instance_limits
from bss.instances import find_instance
from bss.settings import get_settings

DEFAULT = "default"


def _rates(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> object:
    """API=RATE pairs: calls per second, or `default` to use the settings' again."""
    rates: dict[str, float | None] = {}
    for item in values:
        api, sep, raw = item.partition("=")
        api, raw = api.strip().lower(), raw.strip().lower()
        if not sep or api not in PACED_APIS:
            raise click.BadParameter(
                f"{item!r}: write API=CALLS_PER_SECOND, the API one of {', '.join(PACED_APIS)}"
                " (e.g. licensing=10)."
            )
        if raw == DEFAULT:
            rates[api] = None
            continue
        try:
            rate = float(raw)
        except ValueError:
            rate = math.nan
        if not math.isfinite(rate) or rate <= 0:
            raise click.BadParameter(
                f"{item!r}: the rate must be a number of calls per second above 0, or `default`."
            )
        rates[api] = rate
    return rates


@click.command("set-quota")
@click.argument("instance")
@click.argument("rates", nargs=-1, required=True, callback=_rates, metavar="API=RATE...")
def instances_set_quota(instance: str, rates: dict[str, float | None]) -> None:
    """Set the calls per second INSTANCE's Cloud project may make, by API (reseller, admin,
    licensing, gmail): raise them when Google has granted the project more; `default` goes back
    to the settings' BSS_QUOTA_<API>. Example: bss instances set-quota acme/main licensing=10"""
    settings = get_settings()
    try:
        with session_scope(settings.database_url) as s:
            found = find_instance(s, instance)
            quotas = dict(found.quotas or {})
            for api, rate in rates.items():
                if rate is None:
                    quotas.pop(api, None)
                else:
                    quotas[api] = rate
            found.quotas = quotas or None
            s.add(found)
            limits = instance_limits(found, settings)
            own = set(quotas)
    except BssError as exc:
        raise click.ClickException(exc.message) from exc
    shown = ", ".join(
        f"{api} {limits[api]:g}/s{'' if api in own else ' (default)'}" for api in PACED_APIS
    )
    click.echo(f"Instance {instance}: {shown}. Workers use it from their next job.")
