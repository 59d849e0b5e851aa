"""Telling people what happened: signed webhooks to the distributor's billing system (e-mail
comes next). A wing records an event in the same transaction as the change it reports; the
delivery is sent after commit, retried with backoff, and re-sent by the sweep if lost."""

from bss.notify.webhooks import (
    configure_webhook,
    deliver,
    recent_deliveries,
    record_event,
    sign,
    verify,
)

__all__ = [
    "configure_webhook",
    "deliver",
    "recent_deliveries",
    "record_event",
    "sign",
    "verify",
]
