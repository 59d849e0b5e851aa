"""The conditions other wings report, in the words their mail uses: an instance that needs
re-authentication (and works again), a failed job, a drift found, webhook deliveries failing,
a mail sender Google refuses. Each is written in the caller's transaction."""

from __future__ import annotations

import logging

from sqlmodel import Session, select

from bss.db import session_scope
from bss.errors import GoogleError
from bss.models import (
    Alert,
    Distributor,
    Drift,
    Instance,
    Job,
    MailSender,
    NotifyTopic,
    SenderMode,
    SenderStatus,
    WebhookDelivery,
    utcnow,
)
from bss.notify.alerts import add_to_digest, open_alert, resolve_alert
from bss.settings import Settings

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 500
# Where a distributor's admins, and the operators, manage mail senders.
SENDERS_PATHS = {"distributor": "/portal/notifications", "platform": "/dashboard/mail"}


def _distributor(session: Session, distributor_id: int | None) -> Distributor | None:
    return session.get(Distributor, distributor_id) if distributor_id is not None else None


def instance_label(session: Session, instance: Instance) -> str:
    """An instance as people name it: distributor-slug/instance-name."""
    distributor = _distributor(session, instance.distributor_id)
    return f"{distributor.slug}/{instance.name}" if distributor else instance.name


def needs_reauth_key(instance_id: int | None) -> str:
    return f"{NotifyTopic.INSTANCE_NEEDS_REAUTH}:{instance_id}"


def token_expiring_key(instance_id: int | None) -> str:
    return f"{NotifyTopic.INSTANCE_TOKEN_EXPIRING}:{instance_id}"


def sender_failing_key(sender_id: int | None) -> str:
    return f"{NotifyTopic.SENDER_FAILING}:{sender_id}"


def sender_token_expiring_key(sender_id: int | None) -> str:
    return f"sender.token_expiring:{sender_id}"


def webhooks_failing_key(distributor_id: int) -> str:
    return f"{NotifyTopic.WEBHOOKS_FAILING}:{distributor_id}"


def instance_needs_reauth(session: Session, instance: Instance, *, why: str) -> Alert:
    """Google refused the instance's grant: one alert, however many jobs find out."""
    label = instance_label(session, instance)
    distributor = _distributor(session, instance.distributor_id)
    service_account = instance.mode == "service_account"
    return open_alert(
        session,
        key=needs_reauth_key(instance.id),
        topic=NotifyTopic.INSTANCE_NEEDS_REAUTH,
        distributor_id=instance.distributor_id,
        instance_id=instance.id,
        title=f"Instance {label} needs re-authentication",
        details={
            "what": f"Google refused the credentials of instance {label}. Its jobs wait "
            "(waiting_reauth) and resume by themselves once it works again.",
            "todo": (
                "Check the service account's domain-wide delegation in the Admin console, then "
                "click Verify on the instance's page."
                if service_account
                else "Open the instance in the portal and click Authenticate Instance."
            ),
            "path": f"/portal/instances/{instance.id}",
            "facts": {
                "Distributor": distributor.name if distributor else None,
                "Google's answer": why,
            },
        },
    )


def instance_recovered(session: Session, instance: Instance, *, new_grant: bool) -> None:
    """The instance works again (re-authenticated, verified, enabled): its alerts close, and
    the Gmail API senders that act as it work again. A new grant also ends the warning that
    the old one would expire."""
    resolve_alert(session, needs_reauth_key(instance.id))
    if new_grant:
        resolve_alert(session, token_expiring_key(instance.id))
    senders = session.exec(
        select(MailSender).where(
            MailSender.instance_id == instance.id,
            MailSender.mode == SenderMode.GMAIL_API,
            MailSender.status == SenderStatus.FAILING,
        )
    ).all()
    for sender in senders:
        sender_works(session, sender)


def job_failed(session: Session, job: Job) -> Alert:
    """A job ended failed: counted in its distributor's digest of failed jobs."""
    distributor = _distributor(session, job.distributor_id)
    about = f" {job.customer_domain}" if job.customer_domain else ""
    error = (job.error or {}).get("message") or "failed"
    return add_to_digest(
        session,
        topic=NotifyTopic.JOBS_FAILED,
        distributor_id=job.distributor_id,
        title=f"Jobs failed at {distributor.name if distributor else job.distributor_id}",
        line=f"{job.id} {job.operation}{about}: {error}",
    )


def drift_found(session: Session, drift: Drift) -> Alert:
    """Google differs from what billing ordered: counted in the distributor's drift digest."""
    distributor = _distributor(session, drift.distributor_id)
    customer = drift.customer_domain or drift.customer_id
    sku = f" {drift.sku_id}" if drift.sku_id else ""
    return add_to_digest(
        session,
        topic=NotifyTopic.DRIFT_FOUND,
        distributor_id=drift.distributor_id,
        title=f"Drift found at {distributor.name if distributor else drift.distributor_id}",
        line=f"{customer}{sku} {drift.field}: billing ordered {drift.desired!r}, "
        f"Google has {drift.actual!r}",
    )


def webhook_failed(session: Session, delivery: WebhookDelivery) -> Alert:
    """A webhook delivery was given up: billing misses events until the receiver answers."""
    distributor = _distributor(session, delivery.distributor_id)
    name = distributor.name if distributor else str(delivery.distributor_id)
    return open_alert(
        session,
        key=webhooks_failing_key(delivery.distributor_id),
        topic=NotifyTopic.WEBHOOKS_FAILING,
        distributor_id=delivery.distributor_id,
        title=f"Webhook deliveries to {name}'s billing system are failing",
        details={
            "what": f"The webhook event {delivery.event} ({delivery.id}) was given up after "
            f"{delivery.attempts} attempts. Billing misses events until its receiver answers.",
            "todo": "Check that the webhook URL answers with a 2xx status; the portal's API "
            "access page lists the latest deliveries and their answers.",
            "path": f"/portal/distributors/{delivery.distributor_id}/api-access",
            "facts": {
                "Webhook URL": distributor.webhook_url if distributor else None,
                "Last answer": delivery.last_error,
            },
        },
    )


def webhook_delivered(session: Session, distributor_id: int) -> None:
    """A delivery got through: the distributor's webhook alert closes."""
    resolve_alert(session, webhooks_failing_key(distributor_id))


def senders_path(sender: MailSender) -> str:
    return SENDERS_PATHS["platform" if sender.distributor_id is None else "distributor"]


def sender_failed(settings: Settings, sender: MailSender, exc: GoogleError) -> None:
    """Google refused the sender's grant: it is failing (chosen no more), with Google's answer,
    and reported through another sender (an alert) and on the dashboard."""
    said = exc.message if not exc.hint else f"{exc.message} ({exc.hint})"
    with session_scope(settings.database_url) as s:
        row = s.get(MailSender, sender.id)
        if row is None:
            return
        row.status = SenderStatus.FAILING
        row.last_error = said[:MAX_ERROR_CHARS]
        row.updated_at = utcnow()
        s.add(row)
        owner = _distributor(s, row.distributor_id)
        whose = owner.name if owner else "the platform"
        open_alert(
            s,
            key=sender_failing_key(row.id),
            topic=NotifyTopic.SENDER_FAILING,
            distributor_id=row.distributor_id,
            title=f"Mail sender {row.name} of {whose} stopped working",
            details={
                "what": f"Google refused mail sender {row.name} ({row.mode}, from "
                f"{row.from_address}). Notifications go through another sender meanwhile, if "
                "there is one.",
                "todo": exc.hint or "Authenticate the sender again on the Notifications page.",
                "path": senders_path(row),
                "facts": {"Google's answer": exc.message},
            },
        )
    log.warning("mail sender %s failing: %s", sender.id, exc.message)


def sender_works(session: Session, sender: MailSender) -> None:
    """The sender sent, or was authenticated again: OK, and its alert closes."""
    sender.status, sender.last_error, sender.updated_at = SenderStatus.OK, None, utcnow()
    session.add(sender)
    resolve_alert(session, sender_failing_key(sender.id))
