"""Reseller API v1: subscriptions (placeholder until the full module lands)."""

from __future__ import annotations

from bss.sandbox.model import public
from bss.sandbox.state import State


def subscription_view(state: State, subscription: dict) -> dict:
    return public(subscription)
