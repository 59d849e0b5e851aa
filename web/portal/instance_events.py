"""An instance's Google notifications: their state (shown on the instance page and the
dashboard's events page) and the control that registers them for push, pull, or turns them off.

Registering calls Google (resellernotify.register with the instance's credentials, then a
Pub/Sub subscription on the platform's account); what went wrong is kept on the instance in
words (`events_error`) and shown here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, flash, redirect, request, url_for

from bss import events
from bss.errors import BssError
from bss.models import Instance
from web.deps import db, settings
from web.portal.access import audit_action, instance_or_404, sign_in_required
from web.portal.forms import ActionForm

bp = Blueprint("instance_events", __name__, url_prefix="/portal/instances")

MODES = {
    "push": "Push: Google sends each change to this platform's public address as it happens",
    "pull": "Pull: this platform fetches the changes every few seconds (no public address needed)",
    "off": "Off: no notifications; the scheduled reconciliation still finds differences",
}
# Worst first, for lists of instances.
ORDER = {"failing": 0, "silent": 1, "pending": 2, "off": 3, "receiving": 4}


@dataclass(frozen=True)
class NotificationState:
    """What an instance's notifications look like to an operator."""

    state: str  # off | pending | failing | silent | receiving
    label: str
    detail: str
    mode: str
    last_event_at: datetime | None
    last_reconciled_at: datetime | None
    reconcile: dict[str, Any]


def _count(value: Any) -> int:
    if isinstance(value, list | tuple | dict):
        return len(value)
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def notification_state(instance: Instance) -> NotificationState:
    """Off (not registered), pending (asked, not registered yet), failing (registering or
    receiving went wrong), silent (registered, but the last reconciliation found changes no
    notification told us), or receiving."""
    mode = instance.events_mode or "off"
    reconcile = dict(instance.last_reconcile or {})
    missed = _count(reconcile.get("missed"))
    if instance.events_error:
        state, label, detail = "failing", "Failing", instance.events_error
    elif mode == "off":
        state, label = "off", "Not registered"
        detail = "Google's changes reach us only through the scheduled reconciliation."
    elif not instance.events_registered_at:
        state, label, detail = "pending", "Not registered yet", f"{mode} was asked for."
    elif missed:
        state, label = "silent", "Silent"
        detail = (
            f"The last reconciliation found {missed} change{'s' if missed != 1 else ''} "
            "that no notification told us about."
        )
    else:
        state, label = "receiving", f"Receiving ({mode})"
        detail = (
            "Registered; the last reconciliation found nothing the notifications missed."
            if instance.last_reconciled_at
            else "Registered; not reconciled with Google yet."
        )
    return NotificationState(
        state=state,
        label=label,
        detail=detail,
        mode=mode,
        last_event_at=instance.last_event_at,
        last_reconciled_at=instance.last_reconciled_at,
        reconcile=reconcile,
    )


def notifications_context(instance: Instance) -> dict[str, Any]:
    """What the instance page's notifications card needs."""
    platform = settings()
    try:
        push_url = platform.push_url
    except IndexError:  # no public base URL: push has nowhere to go
        push_url = ""
    return {
        "notifications": notification_state(instance),
        "event_modes": MODES,
        "push_url": push_url,
        "events_configured": bool(platform.events_service_account_file),
    }


@bp.post("/<int:instance_id>/notifications")
@sign_in_required
def set_notifications(instance_id: int):
    """Register this instance's notifications for push or pull, or turn them off."""
    instance = instance_or_404(instance_id)
    ActionForm().validate_on_submit()
    mode = (request.form.get("mode") or "").strip()
    back = redirect(url_for("instances.show_instance", instance_id=instance_id) + "#notifications")
    if mode not in MODES:
        flash("Choose push, pull or off for Google's notifications.", "error")
        return back
    before = instance.events_mode
    try:
        events.register_events(db(), settings(), instance, mode)
    except BssError as exc:
        db().rollback()
        flash(f"Notifications not changed: {exc.message}", "error")
        return back
    audit_action(
        "instance.notifications",
        distributor_id=instance.distributor_id,
        target=f"instance {instance.name}",
        mode=mode,
        was=before,
        error=instance.events_error,
    )
    db().commit()
    if instance.events_error:
        flash(f"Notifications ({mode}): {instance.events_error}", "error")
    elif mode == "off":
        flash("Google's notifications are off for this instance.", "ok")
    else:
        flash(f"Google's notifications are registered ({mode}).", "ok")
    return back
