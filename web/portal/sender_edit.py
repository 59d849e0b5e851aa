"""Edit a mail sender: a page of its own with the fields its mode uses, filled in with what is
stored (never a secret: an empty key keeps the stored one), and its save. A distributor's in the
portal, the platform's on the dashboard's Mail page: routed with the Notifications page's other
forms (`notification_actions.register`). A refused save shows the page again with every problem
and what was typed, and changes nothing; a save goes on the audit log."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template
from wtforms import Field

from bss import notify
from bss.errors import ValidationFailed
from bss.models import MailSender, SenderMode
from web.deps import db
from web.portal.access import audit_action, require_user, sign_in_required, vault
from web.portal.forms import SenderEditForm, problems, uploaded_key
from web.portal.notifications import (
    Owner,
    instance_choices,
    instances_for,
    owner_or_404,
    sender_or_404,
)

# A sender's stored fields an edit may change, and their names on the audit log
CHANGEABLE = {
    "name": "name",
    "from_address": "from_address",
    "instance_id": "instance",
    "service_account_key_enc": "key",
}


@sign_in_required
def edit_sender(distributor_id: int | None, sender_id: int):
    owner = owner_or_404(distributor_id)
    sender = sender_or_404(owner, sender_id)
    form = SenderEditForm(
        formdata=None,
        name=sender.name,
        from_address=sender.from_address,
        instance_id=sender.instance_id or 0,
    )
    return _page(owner, sender, form, [])


@sign_in_required
def save_sender(distributor_id: int | None, sender_id: int):
    owner = owner_or_404(distributor_id)
    sender = sender_or_404(owner, sender_id)
    form = SenderEditForm()
    if not form.validate_on_submit():
        errors = [f"{form[name].label.text}: {'; '.join(e)}" for name, e in form.errors.items()]
        return _page(owner, sender, form, errors)
    before = {field: getattr(sender, field) for field in CHANGEABLE}
    try:
        notes = notify.update_sender(
            db(),
            sender,
            vault=vault(),
            key_file=uploaded_key(),
            **_changes(sender, form),
        )
    except ValidationFailed as exc:
        db().rollback()
        return _page(owner, sender, form, problems(exc, notify.SENDER_FIELD_LABELS))
    changed = [
        word for field, word in CHANGEABLE.items() if getattr(sender, field) != before[field]
    ]
    if not changed:
        db().rollback()
        flash(f"Nothing changed: sender {sender.name!r} already had these values.", "ok")
        return redirect(owner.page())
    audit_action(
        "mail_sender.update",
        distributor_id=owner.distributor_id,
        target=f"sender {sender.name}",
        changed=changed,
        previous_name=before["name"],
        from_address=sender.from_address,
        instance_id=sender.instance_id,
        key_replaced="key" in changed,
        status=sender.status,
    )
    db().commit()
    flash(" ".join([f"Sender {before['name']!r} is saved.", *notes]), "ok")
    return redirect(owner.page())


def _given(field: Field) -> Any:
    """What the form says of a field; None when it was not sent (the field stays)."""
    return field.data if field.raw_data else None


def _changes(sender: MailSender, form: SenderEditForm) -> dict[str, Any]:
    """The fields the sender's mode lets the form change."""
    changes: dict[str, Any] = {"name": _given(form.name)}
    if sender.mode != SenderMode.SERVICE_ACCOUNT:
        changes["instance_id"] = _given(form.instance_id) or None
    # The Gmail API sends as the instance's user, whichever instance is chosen.
    is_gmail_api = sender.mode == SenderMode.GMAIL_API
    changes["from_address"] = "" if is_gmail_api else _given(form.from_address)
    return changes


def _page(owner: Owner, sender: MailSender, form: SenderEditForm, errors: list[str]):
    form.instance_id.choices = instance_choices(instances_for(owner))
    return render_template(
        "portal/sender_edit.html",
        owner=owner,
        sender=sender,
        form=form,
        errors=errors,
        mode=notify.MODE_LABELS[SenderMode(sender.mode)],
        key=notify.sender_key(vault(), sender),
        user=require_user(),
    ), (422 if errors else 200)
