"""The OAuth callback of Authenticate Instance, at the path distributors already register; a
mail sender's mailbox consents through an instance's client, so its answer comes back here too."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from bss import instances, jobs, notify
from bss.gateway import peek_state
from bss.instances import OAUTH_CALLBACK_PATH
from bss.models import Instance, MailSender, OAuthPurpose
from web.deps import db, settings
from web.portal.access import BROWSER_KEY, audit_action, current_user, started_flows, vault
from web.portal.instance_actions import send_after_commit
from web.portal.notification_actions import MAILBOX_FLOWS

bp = Blueprint("oauth_callback", __name__)


@bp.get(OAUTH_CALLBACK_PATH)
def authenticate_google_workspace():
    """Finish the consent: tell the opener (or redirect the page) and store nothing on error."""
    started = peek_state(db(), request.args.get("state"))
    if started is not None and started.purpose == OAuthPurpose.MAIL_SENDER:
        return mailbox_callback()
    outcome = instances.finish_authentication(
        db(),
        settings=settings(),
        vault=vault(),
        user=current_user(),
        browser_id=session.get(BROWSER_KEY),
        params=request.args.to_dict(),
        started_instances=started_flows(),
    )
    resumed: list[str] = []
    if outcome.ok and outcome.instance_id is not None:
        instance = db().get(Instance, outcome.instance_id)
        if instance is not None:
            resumed = jobs.resume_waiting_jobs(db(), outcome.instance_id)
            audit_action(
                "instance.authenticate",
                distributor_id=instance.distributor_id,
                target=f"instance {instance.name}",
                authenticated_as=instance.authenticated_as,
                scopes=instance.granted_scopes.split(),
            )
            db().commit()
    send_after_commit(resumed)
    if outcome.display == "page" and outcome.instance_id is not None and current_user():
        flash(outcome.message, "ok" if outcome.ok else "error")
        return redirect(url_for("instances.show_instance", instance_id=outcome.instance_id))
    payload = {
        "type": "bss-instance-auth",
        "ok": outcome.ok,
        "reason": outcome.reason,
        "message": outcome.message,
        "instance_id": outcome.instance_id,
    }
    back = (
        url_for("instances.show_instance", instance_id=outcome.instance_id)
        if outcome.instance_id is not None
        else url_for("instances.list_instances")
    )
    status = 200 if outcome.ok else 400
    return render_template("portal/oauth_result.html", payload=payload, back=back), status


def mailbox_callback():
    """Finish a mailbox's consent (the shared OAuth callback found a mail sender's state)."""
    outcome = notify.finish_mailbox_consent(
        db(),
        settings=settings(),
        vault=vault(),
        user=current_user(),
        browser_id=session.get(BROWSER_KEY),
        params=request.args.to_dict(),
        started_senders=started_flows(key=MAILBOX_FLOWS),
    )
    sender = db().get(MailSender, outcome.sender_id) if outcome.sender_id else None
    if outcome.ok and sender is not None:
        audit_action(
            "mail_sender.authenticate",
            distributor_id=sender.distributor_id,
            target=f"sender {sender.name}",
            mailbox=sender.from_address,
            scopes=sender.granted_scopes.split(),
        )
        db().commit()
    back = _page_of(sender)
    if outcome.display == "page" and current_user():
        flash(outcome.message, "ok" if outcome.ok else "error")
        return redirect(back)
    if outcome.ok:  # the opener reloads: the page shows the result at its top
        flash(outcome.message, "ok")
    payload = {
        "type": "bss-sender-auth",
        "ok": outcome.ok,
        "reason": outcome.reason,
        "message": outcome.message,
        "sender_id": outcome.sender_id,
    }
    return render_template(
        "portal/oauth_result.html", payload=payload, back=back, title="Mailbox authenticated"
    ), (200 if outcome.ok else 400)


def _page_of(sender: MailSender | None) -> str:
    if sender is None:
        return url_for("notifications.notifications_home")
    if sender.distributor_id is None:
        return url_for("dashboard_mail.mail")
    return url_for("notifications.show", distributor_id=sender.distributor_id)
