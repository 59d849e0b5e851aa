"""Google tells us what changed: Reseller API notifications through Pub/Sub (pushed to our
endpoint or pulled), stored once and processed in a worker; the mirror of each customer's
subscriptions as Google holds them; the desired state that billing's last succeeded job set;
drift between the two, told to billing by webhook and resolved by accepting Google's value or
restoring ours with a job; and the scheduled reconciliation that finds what notifications
missed. Nothing here changes Google on its own."""

from bss.events.apply import Applied, apply_subscription, customer_state
from bss.events.desired import catch_up, differences
from bss.events.desired import summary as subscription_summary
from bss.events.drift import get_drift, list_drift, resolve_drift, restore_request
from bss.events.drift_rows import drift_dict
from bss.events.ingest import PushRefused, decode_message, receive_push, store_message
from bss.events.mirror_views import customer_view, find_mirror, subscriptions_view
from bss.events.process import EventProcessor
from bss.events.pull import pull_once
from bss.events.reconcile import Change, DriftLine, ReconcileReport, reconcile
from bss.events.schedule import TickResult, TickState, events_forever, events_tick
from bss.events.schemas import (
    RESOLVE_EXAMPLES,
    CustomerPath,
    CustomerPublic,
    CustomerSubscriptions,
    DriftList,
    DriftListQuery,
    DriftPath,
    DriftPublic,
    DriftResolution,
    DriftResolve,
    SubscriptionPublic,
)
from bss.events.subscribe import MODES as EVENT_MODES
from bss.events.subscribe import register_events, subscription_name

__all__ = [
    # ingest, processing, desired state, drift, the mirror (G1)
    "Applied",
    "EventProcessor",
    "PushRefused",
    "apply_subscription",
    "catch_up",
    "customer_state",
    "customer_view",
    "decode_message",
    "differences",
    "drift_dict",
    "find_mirror",
    "get_drift",
    "list_drift",
    "receive_push",
    "resolve_drift",
    "restore_request",
    "store_message",
    "subscription_summary",
    "subscriptions_view",
    # schemas (the billing API's shapes)
    "RESOLVE_EXAMPLES",
    "CustomerPath",
    "CustomerPublic",
    "CustomerSubscriptions",
    "DriftList",
    "DriftListQuery",
    "DriftPath",
    "DriftPublic",
    "DriftResolution",
    "DriftResolve",
    "SubscriptionPublic",
    # subscribing, pulling, reconciling, the scheduler's round (G2)
    "EVENT_MODES",
    "Change",
    "DriftLine",
    "ReconcileReport",
    "TickResult",
    "TickState",
    "events_forever",
    "events_tick",
    "pull_once",
    "reconcile",
    "register_events",
    "subscription_name",
]
