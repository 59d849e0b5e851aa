"""Instance pages: the list, create and edit, the instance page with what to do at Google, and
its health panel (also served alone, so the page can refresh it without a reload)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from wtforms.fields.choices import SelectChoice

from bss.errors import ValidationFailed
from bss.gateway import REQUIRED_SCOPES
from bss.instances import (
    SCOPE_PURPOSES,
    callback_redirect_uri,
    create_instance,
    key_summary,
    missing_scopes,
    redirect_uris,
    update_instance,
)
from bss.models import Distributor, Instance, InstanceHealth, InstanceMode, InstanceStatus, utcnow
from web.deps import db, settings
from web.portal.access import (
    audit_action,
    instance_or_404,
    require_user,
    sign_in_required,
    vault,
    visible_distributors,
    visible_instances,
)
from web.portal.forms import ActionForm, InstanceForm, ServiceAccountForm, problems
from web.portal.instance_events import notifications_context

bp = Blueprint("instances", __name__, url_prefix="/portal")

STATUS_LABELS = {
    InstanceStatus.NOT_AUTHENTICATED: "Not authenticated",
    InstanceStatus.AUTHENTICATED: "Authenticated",
    InstanceStatus.NEEDS_REAUTH: "Needs re-authentication",
    InstanceStatus.DISABLED: "Disabled",
}

# The APIs to enable in the distributor's Cloud project, with their library pages.
APIS_TO_ENABLE = [
    ("Google Workspace Reseller API", "reseller.googleapis.com"),
    ("Admin SDK API", "admin.googleapis.com"),
    ("Enterprise License Manager API", "licensing.googleapis.com"),
    ("Gmail API", "gmail.googleapis.com"),
]


FIELD_LABELS = {
    "name": "System Name",
    "mode": "Mode",
    "client_id": "Client ID",
    "client_secret": "Client Secret",
}


@dataclass
class Health:
    """What the health panel shows."""

    status: str
    label: str
    authenticated_as: str | None
    authenticated_at: datetime | None
    last_refresh_at: datetime | None
    token_valid_until: datetime | None
    token_valid: bool
    granted_scopes: list[str]
    missing_scopes: list[str]
    last_error: str | None
    checked_at: datetime | None
    checks: list[dict]


def health_of(instance: Instance) -> Health:
    record = db().get(InstanceHealth, instance.id)
    until = record.access_token_expires_at if record else None
    granted = instance.granted_scopes.split()
    return Health(
        status=instance.status,
        label=STATUS_LABELS.get(InstanceStatus(instance.status), instance.status),
        authenticated_as=instance.authenticated_as,
        authenticated_at=instance.authenticated_at,
        last_refresh_at=instance.last_refresh_at,
        token_valid_until=until,
        token_valid=bool(until and until > utcnow()),
        granted_scopes=granted,
        missing_scopes=missing_scopes(granted) if granted else [],
        last_error=instance.last_error,
        checked_at=record.checked_at if record and record.results else None,
        checks=list(record.results) if record else [],
    )


def google_setup() -> dict[str, Any]:
    """What the "Set up at Google" steps show: the Authorized redirect URI for each public base
    URL, the APIs to enable, the scopes to grant (needed before the Client ID exists)."""
    return {
        "redirect_uris": redirect_uris(settings().base_urls),
        "apis": APIS_TO_ENABLE,
        "scopes": [(s, SCOPE_PURPOSES[s]) for s in REQUIRED_SCOPES],
    }


@bp.get("/")
@sign_in_required
def home():
    return redirect(url_for("instances.list_instances"))


@bp.get("/instances")
@sign_in_required
def list_instances():
    user = require_user()
    rows = [(i, d, STATUS_LABELS.get(InstanceStatus(i.status))) for i, d in visible_instances(user)]
    return render_template("portal/instances.html", rows=rows, user=user)


def _distributor_choices(form: InstanceForm) -> list[Distributor]:
    distributors = visible_distributors(require_user())
    form.distributor_id.choices = [SelectChoice(str(d.id), d.name) for d in distributors]  # type: ignore[misc]
    return distributors


@bp.route("/instances/new", methods=["GET", "POST"])
@sign_in_required
def new_instance():
    user = require_user()
    form = InstanceForm()
    distributors = _distributor_choices(form)
    if not distributors:
        abort(404)
    errors: list[str] = []
    if form.validate_on_submit():
        wanted = form.distributor_id.data if user.is_operator else user.distributor_id
        distributor = next((d for d in distributors if d.id == wanted), None)
        if distributor is None:
            errors.append("Choose a distributor.")
        else:
            try:
                instance = create_instance(
                    db(),
                    vault=vault(),
                    distributor=distributor,
                    name=form.name.data or "",
                    client_id=form.client_id.data or "",
                    client_secret=form.client_secret.data or "",
                    mode=form.mode.data or InstanceMode.OAUTH,
                )
                audit_action(
                    "instance.create",
                    distributor_id=distributor.id,
                    target=f"instance {instance.name}",
                    mode=instance.mode,
                    client_id=instance.client_id,
                )
                db().commit()
                flash(f"Instance {instance.name!r} is created. Now set it up at Google.", "ok")
                return redirect(url_for("instances.show_instance", instance_id=instance.id))
            except ValidationFailed as exc:
                db().rollback()
                errors = problems(exc, FIELD_LABELS)
    elif request.method == "POST":
        errors = _form_errors(form)
    return render_template(
        "portal/instance_form.html",
        form=form,
        instance=None,
        errors=errors,
        user=user,
        **google_setup(),
    ), (422 if errors else 200)


@bp.route("/instances/<int:instance_id>/edit", methods=["GET", "POST"])
@sign_in_required
def edit_instance(instance_id: int):
    instance = instance_or_404(instance_id)
    form = InstanceForm(obj=None if request.method == "POST" else instance)
    _distributor_choices(form)
    form.distributor_id.data = instance.distributor_id
    errors: list[str] = []
    if form.validate_on_submit():
        try:
            notes = update_instance(
                db(),
                instance,
                vault=vault(),
                name=form.name.data or "",
                client_id=form.client_id.data or "",
                client_secret=form.client_secret.data or None,
                mode=form.mode.data or InstanceMode.OAUTH,
            )
            audit_action(
                "instance.update",
                distributor_id=instance.distributor_id,
                target=f"instance {instance.name}",
                changes=notes,
                client_secret_replaced=bool(form.client_secret.data),
            )
            db().commit()
            flash(" ".join(["Saved.", *notes]), "ok")
            return redirect(url_for("instances.show_instance", instance_id=instance.id))
        except ValidationFailed as exc:
            db().rollback()
            errors = problems(exc, FIELD_LABELS)
    elif request.method == "POST":
        errors = _form_errors(form)
    return render_template(
        "portal/instance_form.html",
        form=form,
        instance=instance,
        errors=errors,
        user=require_user(),
    ), (422 if errors else 200)


@bp.get("/instances/<int:instance_id>")
@sign_in_required
def show_instance(instance_id: int):
    instance = instance_or_404(instance_id)
    distributor = db().get(Distributor, instance.distributor_id)
    here = callback_redirect_uri(settings(), request.host_url)
    return render_template(
        "portal/instance.html",
        instance=instance,
        distributor=distributor,
        health=health_of(instance),
        redirect_uri_here=here,
        **google_setup(),
        dwd_scopes=",".join(REQUIRED_SCOPES),
        key=key_summary(vault(), instance),
        action=ActionForm(),
        sa_form=ServiceAccountForm(delegated_admin=instance.delegated_admin or ""),
        user=require_user(),
        **notifications_context(instance),
    )


@bp.get("/instances/<int:instance_id>/health")
@sign_in_required
def instance_health(instance_id: int):
    instance = instance_or_404(instance_id)
    return render_template("portal/_health.html", instance=instance, health=health_of(instance))


def _form_errors(form: InstanceForm | ServiceAccountForm) -> list[str]:
    return [f"{form[name].label.text}: {'; '.join(errs)}" for name, errs in form.errors.items()]
