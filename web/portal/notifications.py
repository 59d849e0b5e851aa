"""The Notifications page: who is told what (recipients and their topics), the Google accounts
mail goes out through (senders, each with its status and token validity), and the mail sent
lately. A distributor's page is in the portal; the platform's senders and recipients are on the
dashboard's Mail page, with the same forms (`Owner` says whose they are and where they post)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, redirect, render_template, session, url_for
from sqlmodel import col, select

from bss import notify
from bss.models import (
    Distributor,
    Instance,
    MailSender,
    NotificationRecipient,
    SenderMode,
    SenderStatus,
    User,
    utcnow,
)
from web import times
from web.deps import db
from web.portal.access import (
    can_see_distributor,
    require_user,
    sign_in_required,
    vault,
    visible_distributors,
)
from web.portal.forms import ActionForm, RecipientForm, SenderForm, TestMessageForm

bp = Blueprint("notifications", __name__, url_prefix="/portal")

# Where a refused form's input waits to be shown again (never a file or a secret)
KEPT_INPUT = "notifications_input"
RECENT_MAIL = 25


@dataclass(frozen=True)
class Owner:
    """Whose senders and recipients a page shows: a distributor's, or the platform's (None),
    and the blueprint its forms post to."""

    distributor: Distributor | None
    blueprint: str

    @property
    def distributor_id(self) -> int | None:
        return self.distributor.id if self.distributor else None

    @property
    def name(self) -> str:
        return self.distributor.name if self.distributor else "the platform"

    @property
    def everyone(self) -> str:
        """Who "all admins" are for this owner."""
        return "All distributor admins" if self.distributor else "All operators"

    def url(self, action: str, **ids: Any) -> str:
        """Where the form of `action` posts."""
        values: dict[str, Any] = dict(ids)
        if self.distributor is not None:
            values["distributor_id"] = self.distributor.id
        return url_for(f"{self.blueprint}.{action}", **values)

    def page(self) -> str:
        if self.distributor is None:
            return url_for("dashboard_mail.mail")
        return url_for("notifications.show", distributor_id=self.distributor.id)


def owner_or_404(distributor_id: int | None) -> Owner:
    """The owner named by the route, if the signed-in user may manage it: the platform's
    senders are operators' only; a distributor's, its admins' and operators'."""
    user = require_user()
    if distributor_id is None:
        if not user.is_operator:
            abort(404)
        return Owner(None, "dashboard_mail")
    distributor = db().get(Distributor, distributor_id)
    if distributor is None or not can_see_distributor(user, distributor.id):
        abort(404)
    return Owner(distributor, "notifications")


def sender_or_404(owner: Owner, sender_id: int) -> MailSender:
    sender = db().get(MailSender, sender_id)
    if sender is None or sender.distributor_id != owner.distributor_id:
        abort(404)
    return sender


def recipient_or_404(owner: Owner, recipient_id: int) -> NotificationRecipient:
    recipient = db().get(NotificationRecipient, recipient_id)
    if recipient is None or recipient.distributor_id != owner.distributor_id:
        abort(404)
    return recipient


@dataclass(frozen=True)
class SenderView:
    """A sender as its card shows it: what it is, whether it works, until when; never a token."""

    sender: MailSender
    mode: str
    status: str
    instance: Instance | None
    key: Any
    access_until: datetime | None
    access_valid: bool
    access_in: str
    refresh_in: str

    @property
    def can_authenticate(self) -> bool:
        return self.sender.mode == SenderMode.SMTP_XOAUTH2

    @property
    def can_test(self) -> bool:
        return self.sender.status != SenderStatus.NOT_AUTHENTICATED


def sender_view(sender: MailSender, instances: dict[int, Instance]) -> SenderView:
    now = utcnow()
    until, refresh = sender.access_token_expires_at, sender.refresh_token_expires_at
    return SenderView(
        sender=sender,
        mode=notify.MODE_LABELS[SenderMode(sender.mode)],
        status=notify.STATUS_LABELS[SenderStatus(sender.status)],
        instance=instances.get(sender.instance_id or 0),
        key=notify.sender_key(vault(), sender),
        access_until=until,
        access_valid=bool(until and until > now),
        access_in=times.relative(until, now=now) if until else "",
        refresh_in=times.relative(refresh, now=now) if refresh else "",
    )


def instances_for(owner: Owner) -> list[Instance]:
    """The instances a sender of this owner may use (the platform's: any distributor's)."""
    query = select(Instance).order_by(col(Instance.name))
    if owner.distributor is not None:
        query = query.where(col(Instance.distributor_id) == owner.distributor.id)
    return list(db().exec(query).all())


def instance_choices(instances: list[Instance]) -> list[tuple[int, str]]:
    """The Instance field's options of a sender's form (0: none chosen)."""
    return [(0, "Choose an instance")] + [(i.id, i.name) for i in instances if i.id is not None]


def owner_context(owner: Owner, user: User) -> dict[str, Any]:
    """What the senders and recipients sections of a page show, and their forms."""
    instances = instances_for(owner)
    by_id = {i.id: i for i in instances if i.id is not None}
    senders = notify.owners_senders(db(), owner.distributor_id)
    kept = session.pop(KEPT_INPUT, None) or {}
    sender_form = SenderForm(formdata=None, **kept.get("sender", {}))
    sender_form.instance_id.choices = instance_choices(instances)
    return {
        "owner": owner,
        "senders": [sender_view(s, by_id) for s in senders],
        "recipients": notify.owners_recipients(db(), owner.distributor_id),
        "describe_recipient": notify.describe_recipient,
        "topic_labels": notify.TOPIC_LABELS,
        "chosen_topics": kept.get("topics") or list(notify.TOPICS),
        "sender_form": sender_form,
        "recipient_form": RecipientForm(formdata=None, **kept.get("recipient", {})),
        "test_form": TestMessageForm(formdata=None, to=user.email),
        "action": ActionForm(),
        "has_instances": bool(instances),
    }


def keep_input(**kept: Any) -> None:
    """Keep a refused form's input (no file, no secret) for the page to show again."""
    session[KEPT_INPUT] = kept


def recent_mail_rows(distributor_id: int | None) -> list[dict[str, Any]]:
    """The latest mail of a distributor (ALL: of every distributor and the platform), newest
    first, with the names of its sender and distributor; never a body."""
    messages = notify.recent_mail(db(), distributor_id, RECENT_MAIL)
    sender_ids = {m.sender_id for m in messages if m.sender_id}
    senders = {
        s.id: s
        for s in db().exec(select(MailSender).where(col(MailSender.id).in_(sender_ids))).all()
    }
    distributor_ids = {m.distributor_id for m in messages if m.distributor_id}
    names = {
        d.id: d.name
        for d in db().exec(select(Distributor).where(col(Distributor.id).in_(distributor_ids)))
    }
    return [
        {
            "message": m,
            "sender": senders.get(m.sender_id or 0),
            "distributor": names.get(m.distributor_id or 0, "the platform"),
        }
        for m in messages
    ]


@bp.get("/notifications")
@sign_in_required
def notifications_home():
    """Straight to one's own distributor; operators pick one (the platform's are on Mail)."""
    distributors = visible_distributors(require_user())
    if len(distributors) == 1:
        return redirect(url_for("notifications.show", distributor_id=distributors[0].id))
    return render_template(
        "portal/notifications_pick.html", distributors=distributors, user=require_user()
    )


@bp.get("/distributors/<int:distributor_id>/notifications")
@sign_in_required
def show(distributor_id: int):
    owner = owner_or_404(distributor_id)
    user = require_user()
    return render_template(
        "portal/notifications.html",
        **owner_context(owner, user),
        mail=recent_mail_rows(owner.distributor_id),
        distributor=owner.distributor,
        user=user,
    )


@bp.get("/distributors/<int:distributor_id>/notifications/live")
@sign_in_required
def live(distributor_id: int):
    """The recent mail, refreshed in place (the forms around it are left alone)."""
    owner = owner_or_404(distributor_id)
    return render_template(
        "portal/_mail_live.html", mail=recent_mail_rows(owner.distributor_id), every=False
    )
