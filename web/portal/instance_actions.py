"""Instance buttons: Authenticate Instance, Disconnect, Check, the service-account key and its
delegation check. Each is a POST with a CSRF token."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, request, url_for

from bss import instances, jobs
from bss.errors import BssError, ValidationFailed
from bss.gateway import digest
from web.deps import db, settings
from web.portal.access import (
    audit_action,
    browser_id,
    instance_or_404,
    remember_flow,
    require_user,
    sign_in_required,
    vault,
)
from web.portal.forms import ActionForm, ServiceAccountForm, uploaded_key

bp = Blueprint("instance_actions", __name__, url_prefix="/portal/instances")


def _back(instance_id: int):
    return redirect(url_for("instances.show_instance", instance_id=instance_id))


def send_after_commit(job_ids: list[str]) -> None:
    """Send the messages of jobs queued again, now that the rows are committed.

    The instance wing does not resume jobs itself (it sits below the jobs wing): each handler that
    makes an instance work again asks bss.jobs to resume its jobs in the same transaction. A path
    that forgets is still covered by the sweep, a little later."""
    send = current_app.extensions["bss.send"]
    for job_id in job_ids:
        try:
            send(job_id)
        except Exception:  # noqa: BLE001 - the scheduler's sweep re-sends what is not sent
            current_app.logger.exception("could not enqueue job %s; the sweep will", job_id)


@bp.post("/<int:instance_id>/authenticate")
@sign_in_required
def authenticate(instance_id: int):
    """Start the consent flow: answered with a redirect to Google, in the pop-up or the page."""
    instance = instance_or_404(instance_id)
    form = ActionForm()
    form.validate_on_submit()
    display = "page" if form.display.data == "page" else "popup"
    try:
        started = instances.start_authentication(
            db(),
            settings=settings(),
            vault=vault(),
            instance=instance,
            user=require_user(),
            browser_id=browser_id(),
            request_base=request.host_url,
            display=display,
        )
    except BssError as exc:
        db().rollback()
        flash(exc.message, "error")
        return _back(instance_id)
    remember_flow(digest(started.state), instance_id)
    db().commit()
    return redirect(started.url)


@bp.post("/<int:instance_id>/disconnect")
@sign_in_required
def disconnect(instance_id: int):
    instance = instance_or_404(instance_id)
    message = instances.disconnect(db(), settings=settings(), vault=vault(), instance=instance)
    audit_action(
        "instance.disconnect",
        distributor_id=instance.distributor_id,
        target=f"instance {instance.name}",
    )
    db().commit()
    flash(message, "ok")
    return _back(instance_id)


@bp.post("/<int:instance_id>/disable")
@sign_in_required
def disable(instance_id: int):
    """Stop sending this instance's jobs to Google (they wait) without losing its credentials."""
    instance = instance_or_404(instance_id)
    instances.set_enabled(db(), instance, enabled=False)
    audit_action(
        "instance.disable",
        distributor_id=instance.distributor_id,
        target=f"instance {instance.name}",
    )
    db().commit()
    flash(f"Instance {instance.name!r} is disabled: its jobs wait until it is enabled.", "ok")
    return _back(instance_id)


@bp.post("/<int:instance_id>/enable")
@sign_in_required
def enable(instance_id: int):
    instance = instance_or_404(instance_id)
    instances.set_enabled(db(), instance, enabled=True)
    resumed = jobs.resume_waiting_jobs(db(), instance.id)
    audit_action(
        "instance.enable",
        distributor_id=instance.distributor_id,
        target=f"instance {instance.name}",
        jobs_resumed=len(resumed),
    )
    db().commit()
    send_after_commit(resumed)
    flash(f"Instance {instance.name!r} is enabled; {len(resumed)} waiting job(s) resumed.", "ok")
    return _back(instance_id)


@bp.post("/<int:instance_id>/check")
@sign_in_required
def check(instance_id: int):
    instance = instance_or_404(instance_id)
    results = instances.check_instance(db(), settings=settings(), vault=vault(), instance=instance)
    db().commit()
    failed = [r for r in results if not r.ok]
    if failed:
        flash(f"Check: {len(failed)} of {len(results)} checks failed; see below.", "error")
    else:
        flash(f"Check: all {len(results)} checks passed.", "ok")
    return _back(instance_id)


@bp.post("/<int:instance_id>/service-account")
@sign_in_required
def service_account(instance_id: int):
    instance = instance_or_404(instance_id)
    form = ServiceAccountForm()
    key_file = uploaded_key()
    try:
        notes = instances.configure_service_account(
            db(),
            instance,
            vault=vault(),
            key_file=key_file,
            delegated_admin=form.delegated_admin.data or "",
        )
    except ValidationFailed as exc:
        db().rollback()
        flash(exc.message, "error")
        return _back(instance_id)
    audit_action(
        "instance.service_account",
        distributor_id=instance.distributor_id,
        target=f"instance {instance.name}",
        key_uploaded=key_file is not None,
        delegated_admin=instance.delegated_admin,
    )
    db().commit()
    flash(" ".join(notes), "ok")
    return _back(instance_id)


@bp.post("/<int:instance_id>/verify")
@sign_in_required
def verify(instance_id: int):
    instance = instance_or_404(instance_id)
    try:
        results = instances.verify_service_account(
            db(), settings=settings(), vault=vault(), instance=instance
        )
        resumed = jobs.resume_waiting_jobs(db(), instance.id)
    except ValidationFailed as exc:
        db().rollback()
        flash(exc.message, "error")
        return _back(instance_id)
    db().commit()
    send_after_commit(resumed)
    passed = sum(r.ok for r in results)
    flash(
        f"Delegation: {passed} of {len(results)} scopes PASS.",
        "ok" if passed == len(results) else "error",
    )
    return _back(instance_id)
