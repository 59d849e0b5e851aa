"""Mail: the notification mail sent to people across distributors (to, subject, topic, sender,
when, result; never a body), every sender's status with the failing ones first, and the
platform's own senders and recipients, which operators manage here with the portal's forms."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request
from sqlmodel import col, select

from bss import notify
from bss.accounts import ALL
from bss.models import Distributor, MailSender, SenderMode, SenderStatus
from web.dashboard.access import scope, sees
from web.deps import db
from web.portal.access import require_user, sign_in_required
from web.portal.notification_actions import register
from web.portal.notifications import Owner, owner_context, recent_mail_rows

bp = Blueprint("dashboard_mail", __name__, url_prefix="/dashboard")

# Worst first: what needs someone's attention comes to the top.
ORDER = {SenderStatus.FAILING: 0, SenderStatus.NOT_AUTHENTICATED: 1, SenderStatus.OK: 2}


def _senders(visible: int | None) -> list[dict[str, Any]]:
    """Every sender this user may see (a distributor's admin: their own), failing first."""
    query = select(MailSender, Distributor).outerjoin(
        Distributor, col(Distributor.id) == col(MailSender.distributor_id)
    )
    if visible is not ALL:
        query = query.where(col(MailSender.distributor_id) == visible)
    rows: list[dict[str, Any]] = [
        {
            "sender": sender,
            "distributor": distributor.name if distributor else "the platform",
            "mode": notify.MODE_NAMES[SenderMode(sender.mode)],
            "status": notify.STATUS_LABELS[SenderStatus(sender.status)],
        }
        for sender, distributor in db().exec(query).all()
    ]
    rows.sort(
        key=lambda r: (
            ORDER.get(r["sender"].status, 9),
            r["sender"].distributor_id is not None,
            r["distributor"],
            r["sender"].name,
        )
    )
    return rows


def _chosen(distributor_id: int | None) -> int | None:
    """The distributor whose mail to show (None: all this user sees), if they may see it."""
    if distributor_id is None:
        return scope()
    if db().get(Distributor, distributor_id) is None or not sees(require_user(), distributor_id):
        abort(404)
    return distributor_id


def _live(distributor_id: int | None) -> dict[str, Any]:
    chosen = _chosen(distributor_id)
    return {
        "all_senders": _senders(chosen),
        "mail": recent_mail_rows(chosen),
        "every": chosen is ALL,
        "filtered": distributor_id,
    }


def _page(distributor_id: int | None):
    user = require_user()
    context = _live(distributor_id)
    platform = owner_context(Owner(None, "dashboard_mail"), user) if user.is_operator else None
    return render_template("dashboard/mail.html", **context, platform=platform, user=user)


@bp.get("/mail")
@sign_in_required
def mail():
    return _page(None)


@bp.get("/distributors/<int:distributor_id>/mail")
@sign_in_required
def distributor_mail(distributor_id: int):
    return _page(distributor_id)


@bp.get("/mail/live")
@sign_in_required
def mail_live():
    chosen = request.args.get("distributor", "")
    return render_template(
        "dashboard/_mail_live.html", **_live(int(chosen) if chosen.isdigit() else None)
    )


# The platform's senders and recipients: the portal's forms, for operators only.
register(bp, "/mail/platform", platform=True)
