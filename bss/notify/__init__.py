"""Telling people what happened: signed webhooks to the distributor's billing system, and
e-mail to people. A wing records an event (a webhook delivery, an alert, a failed job counted in
a digest) in the same transaction as the change it reports; it is sent after commit, retried
with backoff, and re-sent by the scheduler if lost. Webhooks go to public internet addresses only
(or networks the operator allows), checked at save time and at each delivery, which connects to
the address it checked. Mail goes through a Google account (a mail sender: the Gmail API, SMTP
with XOAUTH2, or a delegated service account), one mail per condition, reminded while it lasts,
and a digest for storms."""

from bss.notify.alerts import add_to_digest, is_open, open_alert, resolve_alert
from bss.notify.conditions import (
    drift_found,
    instance_needs_reauth,
    instance_recovered,
    job_failed,
    sender_works,
)
from bss.notify.destinations import (
    RefusedDestination,
    UnresolvedDestination,
    check_destination,
)
from bss.notify.mailbox import (
    MailboxOutcome,
    finish_mailbox_consent,
    refresh_sender,
    start_mailbox_consent,
)
from bss.notify.outbox import NO_SENDER, deliver_mail, queue_mail, recent_mail
from bss.notify.pinning import post_pinned
from bss.notify.recipients import (
    TOPIC_LABELS,
    TOPICS,
    add_recipient,
    describe_recipient,
    owners_recipients,
    remove_recipient,
)
from bss.notify.resend import lost_to_resend
from bss.notify.schedule import NotifyTick, notify_due, notify_forever
from bss.notify.sender_fields import (
    MODE_LABELS,
    MODE_NAMES,
    SENDER_FIELD_LABELS,
    STATUS_LABELS,
)
from bss.notify.senders import (
    create_sender,
    default_sender,
    delete_sender,
    make_default,
    owners_senders,
    require_mode,
    sender_key,
    update_sender,
)
from bss.notify.webhooks import (
    configure_webhook,
    deliver,
    recent_deliveries,
    record_event,
    sign,
    verify,
)

__all__ = [
    "NO_SENDER",
    "NotifyTick",
    "add_to_digest",
    "deliver_mail",
    "drift_found",
    "instance_needs_reauth",
    "instance_recovered",
    "is_open",
    "job_failed",
    "lost_to_resend",
    "notify_due",
    "notify_forever",
    "open_alert",
    "queue_mail",
    "recent_mail",
    "resolve_alert",
    "sender_works",
    "MODE_LABELS",
    "MODE_NAMES",
    "MailboxOutcome",
    "SENDER_FIELD_LABELS",
    "STATUS_LABELS",
    "TOPICS",
    "TOPIC_LABELS",
    "add_recipient",
    "create_sender",
    "default_sender",
    "delete_sender",
    "describe_recipient",
    "finish_mailbox_consent",
    "make_default",
    "owners_recipients",
    "owners_senders",
    "refresh_sender",
    "remove_recipient",
    "require_mode",
    "sender_key",
    "start_mailbox_consent",
    "update_sender",
    "RefusedDestination",
    "UnresolvedDestination",
    "check_destination",
    "configure_webhook",
    "deliver",
    "post_pinned",
    "recent_deliveries",
    "record_event",
    "sign",
    "verify",
]
