"""A distributor's access for its billing system: API keys (shown once) and the webhook."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for

from bss.accounts import create_api_key, list_api_keys, revoke_api_key
from bss.errors import NotFound, ValidationFailed
from bss.models import Distributor
from bss.notify import configure_webhook, recent_deliveries
from web.deps import db, settings
from web.portal.access import (
    audit_action,
    can_see_distributor,
    require_user,
    sign_in_required,
    vault,
    visible_distributors,
)
from web.portal.forms import ActionForm, ApiKeyForm, WebhookForm

bp = Blueprint("api_access", __name__, url_prefix="/portal")


def _distributor_or_404(distributor_id: int) -> Distributor:
    distributor = db().get(Distributor, distributor_id)
    if distributor is None or not can_see_distributor(require_user(), distributor.id):
        abort(404)
    return distributor


def _page(
    distributor: Distributor,
    *,
    new_key: str | None = None,
    new_secret: str | None = None,
    errors: list[str] | None = None,
    status: int = 200,
):
    return render_template(
        "portal/api_access.html",
        distributor=distributor,
        keys=list_api_keys(db(), distributor=distributor),
        deliveries=recent_deliveries(db(), distributor_id=distributor.id, limit=20),  # type: ignore[arg-type]
        key_form=ApiKeyForm(formdata=None),
        webhook_form=WebhookForm(formdata=None, url=distributor.webhook_url),
        action_form=ActionForm(),
        new_key=new_key,
        new_secret=new_secret,
        errors=errors or [],
        user=require_user(),
    ), status


@bp.get("/api-access")
@sign_in_required
def api_access_home():
    """Straight to one's own distributor; operators pick one."""
    distributors = visible_distributors(require_user())
    if len(distributors) == 1:
        return redirect(url_for("api_access.show", distributor_id=distributors[0].id))
    return render_template(
        "portal/api_access_pick.html", distributors=distributors, user=require_user()
    )


@bp.get("/distributors/<int:distributor_id>/api-access")
@sign_in_required
def show(distributor_id: int):
    return _page(_distributor_or_404(distributor_id))


@bp.post("/distributors/<int:distributor_id>/api-keys")
@sign_in_required
def create_key(distributor_id: int):
    distributor = _distributor_or_404(distributor_id)
    form = ApiKeyForm()
    if not form.validate_on_submit():
        return _page(
            distributor, errors=["The label is too long (200 characters at most)."], status=422
        )
    label = form.label.data or ""
    key = create_api_key(db(), distributor=distributor, label=label)
    audit_action(
        "api_key.create", distributor_id=distributor.id, target=f"key {key[:12]}", label=label
    )
    db().commit()
    # Rendered, not flashed: a flash would put the key in the session cookie.
    return _page(distributor, new_key=key)


@bp.post("/distributors/<int:distributor_id>/api-keys/<int:key_id>/revoke")
@sign_in_required
def revoke_key(distributor_id: int, key_id: int):
    distributor = _distributor_or_404(distributor_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        key = revoke_api_key(db(), distributor=distributor, key_id=key_id)
    except NotFound:
        abort(404)
    audit_action(
        "api_key.revoke", distributor_id=distributor.id, target=f"key {key.prefix}", label=key.label
    )
    db().commit()
    flash(f"Key {key.prefix}… is revoked: requests with it are refused from now on.", "ok")
    return redirect(url_for("api_access.show", distributor_id=distributor.id))


@bp.post("/distributors/<int:distributor_id>/webhook")
@sign_in_required
def set_webhook(distributor_id: int):
    distributor = _distributor_or_404(distributor_id)
    form = WebhookForm()
    if not form.validate_on_submit():
        return _page(distributor, errors=["Check the URL and the secret."], status=422)
    url = (form.url.data or "").strip() or None
    try:
        secret = configure_webhook(
            db(),
            settings=settings(),
            distributor=distributor,
            vault=vault(),
            url=url,
            secret=form.secret.data or None,
        )
    except ValidationFailed as exc:
        db().rollback()
        problems = [f"{d['field']}: {d['problem']}" for d in exc.details or []]
        return _page(distributor, errors=problems or [exc.message], status=422)
    audit_action(
        "webhook.update" if url else "webhook.remove",
        distributor_id=distributor.id,
        target="webhook",
        url=url,
        secret_replaced=bool(url),
    )
    db().commit()
    if url is None:
        flash("The webhook is removed: no more events will be sent.", "ok")
        return redirect(url_for("api_access.show", distributor_id=distributor.id))
    # A secret the user typed is not shown back; a generated one is shown this once.
    return _page(distributor, new_secret=None if form.secret.data else secret)
