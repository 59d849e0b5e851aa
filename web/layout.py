"""What every page's layout shares, portal and dashboard alike: the one header with its links, the
distributor picker of per-distributor pages, and the template filters for times and ids.

The portal's Instances (set up and authenticate a connection to Google) and the dashboard's
Instance health (watch every instance: token, last check, jobs waiting) stay two pages with two
names: they answer different questions, and each links to the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, abort, redirect, request, url_for

from web import times
from web.portal.access import current_user, sign_in_required, visible_distributors

bp = Blueprint("layout", __name__)


@dataclass(frozen=True)
class NavLink:
    """A link of the header: where it goes, and the blueprints whose pages it stands for."""

    id: str
    label: str
    endpoint: str
    blueprints: tuple[str, ...]
    hint: str


NAV = (
    NavLink(
        "nav-overview",
        "Overview",
        "dashboard_overview.overview",
        ("dashboard_overview",),
        "Queues, workers, throughput and failures",
    ),
    NavLink(
        "nav-jobs",
        "Jobs",
        "dashboard_jobs.jobs",
        ("dashboard_jobs", "dashboard_job"),
        "Find, retry and cancel jobs",
    ),
    NavLink(
        "nav-instances",
        "Instances",
        "instances.list_instances",
        ("instances", "instance_actions", "instance_events"),
        "Set up and authenticate connections to Google",
    ),
    NavLink(
        "nav-health",
        "Instance health",
        "dashboard_instances.instances",
        ("dashboard_instances",),
        "Status, access token, last check and waiting jobs of every instance",
    ),
    NavLink(
        "nav-drift",
        "Drift & events",
        "dashboard_drift.drift",
        ("dashboard_drift", "dashboard_events"),
        "Where Google differs from what billing ordered, and what Google told us changed",
    ),
    NavLink(
        "nav-mail",
        "Mail",
        "dashboard_mail.mail",
        ("dashboard_mail",),
        "Notification mail sent to people, and every sender's status",
    ),
    NavLink(
        "nav-api-access",
        "API keys & webhook",
        "api_access.api_access_home",
        ("api_access",),
        "A distributor's access for its billing system",
    ),
    NavLink(
        "nav-notifications",
        "Notifications",
        "notifications.notifications_home",
        ("notifications",),
        "Who is told what by e-mail, and the Google accounts that send it",
    ),
    NavLink(
        "nav-audit",
        "Audit log",
        "dashboard_audit.audit_log",
        ("dashboard_audit",),
        "Who changed what, and from where",
    ),
)

# Pages that show one distributor's things, by blueprint: the page the picker switches to.
PER_DISTRIBUTOR = {
    "api_access": "api_access.show",
    "notifications": "notifications.show",
    "dashboard_mail": "dashboard_mail.distributor_mail",
}
# Per-distributor pages that also show every distributor at once: the picker offers "All".
ALL_DISTRIBUTORS = {"dashboard_mail.distributor_mail": "dashboard_mail.mail"}
SHORT_ID = 8


def short_id(public_id: str | None) -> str:
    """The first characters after the prefix: `job_3f2c1a2b…` is `3f2c1a2b`."""
    if not public_id:
        return ""
    _, _, rest = str(public_id).partition("_")
    return (rest or str(public_id))[:SHORT_ID]


def distributor_picker() -> dict[str, Any] | None:
    """On a per-distributor page, for an operator: whose page this is, and the others."""
    user = current_user()
    page = PER_DISTRIBUTOR.get(request.blueprint or "")
    current = (request.view_args or {}).get("distributor_id")
    if user is None or not user.is_operator or page is None:
        return None
    # Without a distributor, only the page of every distributor's things has the picker: a
    # platform page beside it (the platform's own mail sender, say) is nobody's to switch.
    if current is None and ALL_DISTRIBUTORS.get(page) != request.endpoint:
        return None
    return {
        "page": page,
        "current": current,
        "distributors": visible_distributors(user),
        "offers_all": page in ALL_DISTRIBUTORS,
    }


@bp.get("/distributor")
@sign_in_required
def pick_distributor():
    """Where the picker's form goes: the same page, for the distributor chosen."""
    page = request.args.get("page", "")
    chosen = request.args.get("distributor_id", "")
    if page in ALL_DISTRIBUTORS and chosen == "":
        return redirect(url_for(ALL_DISTRIBUTORS[page]))
    if page not in PER_DISTRIBUTOR.values() or not chosen.isdigit():
        abort(400, "Choose a distributor from the list.")
    return redirect(url_for(page, distributor_id=int(chosen)))


def init_app(app: Flask) -> None:
    """The header's context and the filters every template uses."""
    app.register_blueprint(bp)
    app.add_template_filter(times.when, "when")
    app.add_template_filter(times.duration, "duration")
    app.add_template_filter(short_id, "short_id")

    @app.context_processor
    def _layout() -> dict[str, Any]:
        return {"nav_links": NAV, "distributor_picker": distributor_picker}
