"""The Notifications page's forms and buttons, for a distributor (in the portal) and for the
platform (on the dashboard's Mail page, operators only): add and remove recipients; add, remove
and make default a sender, and its Edit page (`sender_edit`, routed here with the rest);
Authenticate mailbox (a pop-up, back through the OAuth callback); Refresh now; Send a test
message. Each is a POST with a CSRF token, goes on the audit log, and answers with a redirect to
the page (a refused form's input is kept for it; a refused edit shows its page again)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    request,
)

from bss import notify
from bss.accounts import normalize_email
from bss.errors import BssError, GoogleError, ValidationFailed
from bss.gateway import digest, oauth
from bss.models import MailSender, NotifyTopic, SenderMode, SenderStatus, User, utcnow
from web import times
from web.deps import db, settings
from web.portal import notifications, sender_edit
from web.portal.access import (
    audit_action,
    browser_id,
    remember_flow,
    require_user,
    sign_in_required,
    vault,
)
from web.portal.forms import (
    ActionForm,
    RecipientForm,
    SenderForm,
    TestMessageForm,
    problems,
    uploaded_key,
)
from web.portal.notifications import (
    Owner,
    keep_input,
    owner_or_404,
    recipient_or_404,
    sender_or_404,
)

# The session's note of which sender each mailbox consent in flight was started for
MAILBOX_FLOWS = "mailbox_flows"


def _refused(owner: Owner, exc: BssError, labels: dict[str, str] | None = None):
    db().rollback()
    found = problems(exc, labels or {}) if isinstance(exc, ValidationFailed) else []
    for problem in found or [exc.message]:
        flash(problem, "error")
    return redirect(owner.page())


@sign_in_required
def add_recipient(distributor_id: int | None):
    owner = owner_or_404(distributor_id)
    form = RecipientForm()
    form.validate_on_submit()
    topics = request.form.getlist("topics")
    try:
        recipient = notify.add_recipient(
            db(),
            distributor_id=owner.distributor_id,
            address=form.address.data or "",
            all_admins=bool(form.all_admins.data),
            topics=topics,
        )
    except ValidationFailed as exc:
        keep_input(
            recipient={"address": form.address.data, "all_admins": form.all_admins.data},
            topics=topics,
        )
        return _refused(owner, exc, {"address": "Address", "topics": "Topics"})
    who = notify.describe_recipient(recipient)
    audit_action(
        "notification_recipient.add",
        distributor_id=owner.distributor_id,
        target=f"recipient {who}",
        topics=recipient.topics,
    )
    db().commit()
    flash(f"{who} will be told about {len(recipient.topics)} topic(s).", "ok")
    return redirect(owner.page())


@sign_in_required
def remove_recipient(distributor_id: int | None, recipient_id: int):
    owner = owner_or_404(distributor_id)
    recipient = recipient_or_404(owner, recipient_id)
    who = notify.describe_recipient(recipient)
    notify.remove_recipient(db(), recipient)
    audit_action(
        "notification_recipient.remove",
        distributor_id=owner.distributor_id,
        target=f"recipient {who}",
        topics=recipient.topics,
    )
    db().commit()
    flash(f"{who} will not be told anything more.", "ok")
    return redirect(owner.page())


NEXT_STEP = {
    SenderMode.GMAIL_API: "It sends as the instance's user: send a test message to check.",
    SenderMode.SMTP_XOAUTH2: "Now click Authenticate mailbox and sign in to its mailbox.",
    SenderMode.SERVICE_ACCOUNT: "Now delegate https://mail.google.com/ to the service account "
    "in the Admin console, then click Verify delegation.",
}


@sign_in_required
def add_sender(distributor_id: int | None):
    owner = owner_or_404(distributor_id)
    form = SenderForm()
    form.validate_on_submit()
    mode = form.mode.data or ""
    try:
        sender = notify.create_sender(
            db(),
            vault=vault(),
            distributor_id=owner.distributor_id,
            name=form.name.data or "",
            mode=mode,
            from_address=form.from_address.data or "",
            instance_id=form.instance_id.data or None,
            key_file=uploaded_key(),
        )
    except ValidationFailed as exc:
        keep_input(
            sender={
                "name": form.name.data,
                "mode": mode,
                "instance_id": form.instance_id.data or 0,
                "from_address": form.from_address.data,
            }
        )
        return _refused(owner, exc, notify.SENDER_FIELD_LABELS)
    audit_action(
        "mail_sender.create",
        distributor_id=owner.distributor_id,
        target=f"sender {sender.name}",
        mode=sender.mode,
        from_address=sender.from_address,
        instance_id=sender.instance_id,
        key_uploaded=bool(sender.service_account_key_enc),
        is_default=sender.is_default,
    )
    db().commit()
    flash(f"Sender {sender.name!r} is added. {NEXT_STEP[SenderMode(sender.mode)]}", "ok")
    return redirect(owner.page())


@sign_in_required
def remove_sender(distributor_id: int | None, sender_id: int):
    owner = owner_or_404(distributor_id)
    sender = sender_or_404(owner, sender_id)
    name = sender.name
    message = notify.delete_sender(db(), settings=settings(), vault=vault(), sender=sender)
    audit_action("mail_sender.delete", distributor_id=owner.distributor_id, target=f"sender {name}")
    db().commit()
    flash(message, "ok")
    return redirect(owner.page())


@sign_in_required
def make_default(distributor_id: int | None, sender_id: int):
    owner = owner_or_404(distributor_id)
    sender = sender_or_404(owner, sender_id)
    notify.make_default(db(), sender)
    audit_action(
        "mail_sender.default", distributor_id=owner.distributor_id, target=f"sender {sender.name}"
    )
    db().commit()
    flash(f"Notifications of {owner.name} go out through {sender.name!r} from now on.", "ok")
    return redirect(owner.page())


@sign_in_required
def authenticate(distributor_id: int | None, sender_id: int):
    """Start the mailbox's consent: a redirect to Google, in the pop-up or the page."""
    owner = owner_or_404(distributor_id)
    sender = sender_or_404(owner, sender_id)
    form = ActionForm()
    form.validate_on_submit()
    try:
        notify.require_mode(sender, SenderMode.SMTP_XOAUTH2, "Authenticate mailbox")
        started = notify.start_mailbox_consent(
            db(),
            settings=settings(),
            vault=vault(),
            sender=sender,
            user=require_user(),
            browser_id=browser_id(),
            request_base=request.host_url,
            display="page" if form.display.data == "page" else "popup",
        )
    except BssError as exc:
        return _refused(owner, exc)
    remember_flow(digest(started.state), sender_id, key=MAILBOX_FLOWS)
    db().commit()
    return redirect(started.url)


@sign_in_required
def refresh(distributor_id: int | None, sender_id: int):
    """Obtain an access token now: until when it works, or Google's answer."""
    owner = owner_or_404(distributor_id)
    sender = sender_or_404(owner, sender_id)
    try:
        until = notify.refresh_sender(db(), settings=settings(), sender=sender)
    except GoogleError as exc:
        db().commit()  # a refused grant is recorded on the sender
        flash(
            f"Google refused a new access token for {sender.name!r}: {oauth.describe(exc)}", "error"
        )
        return redirect(owner.page())
    except BssError as exc:
        return _refused(owner, exc)
    audit_action(
        "mail_sender.refresh",
        distributor_id=owner.distributor_id,
        target=f"sender {sender.name}",
        access_token_expires_at=until.isoformat() if until else None,
    )
    db().commit()
    valid = f"valid until {times.absolute(until)} ({times.relative(until)})" if until else "issued"
    flash(f"Google accepts sender {sender.name!r}: its access token is {valid}.", "ok")
    return redirect(owner.page())


def test_body(sender: MailSender, user: User, to: str) -> str:
    """What a test message says: which sender sent it, how, and who asked."""
    mode = notify.MODE_LABELS[SenderMode(sender.mode)]
    return "\n".join(
        [
            "This is a test message from Workspace provisioning.",
            "",
            f"Sent through sender {sender.name!r}: {mode}, as {sender.from_address}.",
            f"Asked for by {user.email} at {times.absolute(utcnow())}.",
            "",
            f"It reached {to}: notifications sent through this sender arrive.",
            "Nothing needs doing.",
        ]
    )


@sign_in_required
def send_test(distributor_id: int | None, sender_id: int):
    """Queue a test message through this very sender, then hand it to the mail workers."""
    owner = owner_or_404(distributor_id)
    sender = sender_or_404(owner, sender_id)
    user = require_user()
    form = TestMessageForm()
    form.validate_on_submit()
    to = (form.to.data or "").strip() or user.email
    try:
        if not sender.from_address or not _ready(sender):
            raise ValidationFailed(
                f"Sender {sender.name!r} is not authenticated yet: "
                f"{NEXT_STEP[SenderMode(sender.mode)]}"
            )
        address = normalize_email(to)
        message = notify.queue_mail(
            db(),
            distributor_id=owner.distributor_id,
            topic=NotifyTopic.TEST,
            recipients=[address],
            subject=f"[BSS] Test message through sender {sender.name}",
            body=test_body(sender, user, address),
            sender_id=sender.id,
        )
    except ValidationFailed as exc:
        return _refused(owner, exc, {"address": "To", "email": "To"})
    audit_action(
        "mail_sender.test",
        distributor_id=owner.distributor_id,
        target=f"sender {sender.name}",
        to=address,
        message_id=message.id,
    )
    db().commit()
    send_mail_after_commit(message.id)
    flash(
        f"Test message queued to {address} through {sender.name!r}: its result shows under "
        "Recent mail.",
        "ok",
    )
    return redirect(owner.page())


def _ready(sender: MailSender) -> bool:
    return sender.status != SenderStatus.NOT_AUTHENTICATED


def send_mail_after_commit(message_id: str) -> None:
    """Hand a committed message to the mail workers; a message not sent is re-sent by the
    scheduler's sweep."""
    try:
        current_app.extensions["bss.send_mail"](message_id)
    except Exception:  # noqa: BLE001 - the scheduler re-sends what is not sent
        current_app.logger.exception("could not enqueue mail %s; the scheduler will", message_id)


ACTIONS: tuple[tuple[str, Callable[..., Any]], ...] = (
    ("/recipients", add_recipient),
    ("/recipients/<int:recipient_id>/remove", remove_recipient),
    ("/senders", add_sender),
    ("/senders/<int:sender_id>/authenticate", authenticate),
    ("/senders/<int:sender_id>/default", make_default),
    ("/senders/<int:sender_id>/refresh", refresh),
    ("/senders/<int:sender_id>/test", send_test),
    ("/senders/<int:sender_id>/remove", remove_sender),
)
# Forms on a page of their own: the page, and where it posts
PAGES: tuple[tuple[str, Callable[..., Any], str], ...] = (
    ("/senders/<int:sender_id>/edit", sender_edit.edit_sender, "GET"),
    ("/senders/<int:sender_id>/edit", sender_edit.save_sender, "POST"),
)


def register(bp: Blueprint, prefix: str, *, platform: bool = False) -> None:
    """Route the forms of an owner's page under `prefix` of `bp`: a distributor's (the prefix
    names `<int:distributor_id>`), or the platform's."""
    routes = [(rule, view, "POST") for rule, view in ACTIONS] + list(PAGES)
    for rule, view, method in routes:
        if platform:
            defaults: dict[str, Any] = {"distributor_id": None}
            bp.add_url_rule(prefix + rule, view.__name__, view, methods=[method], defaults=defaults)
        else:
            bp.add_url_rule(prefix + rule, view.__name__, view, methods=[method])


register(notifications.bp, "/distributors/<int:distributor_id>/notifications")
