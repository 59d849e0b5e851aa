"""Telling people what happened: signed webhooks to the distributor's billing system (e-mail
comes next). A wing records an event in the same transaction as the change it reports; the
delivery is sent after commit, retried with backoff, and re-sent by the sweep if lost. Webhooks
go to public internet addresses only (or networks the operator allows), checked at save time
and at each delivery, which connects to the address it checked."""

from bss.notify.destinations import (
    RefusedDestination,
    UnresolvedDestination,
    check_destination,
)
from bss.notify.pinning import post_pinned
from bss.notify.webhooks import (
    configure_webhook,
    deliver,
    recent_deliveries,
    record_event,
    sign,
    verify,
)

__all__ = [
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
