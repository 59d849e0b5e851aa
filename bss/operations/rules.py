"""Checks across fields, run on the raw params beside the models' own field checks, so that a
refused request lists every problem at once, each at its field path.

A problem is a rule of Google's (it would refuse the call: `rule=True`) or a request that says
too little or twice the same thing. Each check reads raw JSON values defensively: a field that
is missing or of the wrong type is the field checks' business, not a second problem here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bss.operations.common import ANNUAL_PLANS, SKUS, TRIAL_MAX_SEATS, WORKSPACE


@dataclass(frozen=True)
class Problem:
    field: str
    problem: str
    rule: bool = False  # one of Google's rules (refused_by_rule), not the request's shape


def _text(value: Any) -> str | None:
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def customer(data: dict[str, Any], at: str = "") -> list[Problem]:
    """The contact address must be off the customer's domain (Google requires it)."""
    domain, email = _text(data.get("domain")), _text(data.get("alternate_email"))
    if not domain or not email or "@" not in email:
        return []
    mail_domain = email.rsplit("@", 1)[1]
    if mail_domain == domain or mail_domain.endswith("." + domain):
        return [
            Problem(
                f"{at}alternate_email",
                f"must not be on the customer's own domain ({domain}): Google requires a "
                "contact address elsewhere",
                rule=True,
            )
        ]
    return []


def plan_seats(data: dict[str, Any], at: str = "") -> list[Problem]:
    """A TRIAL has at most 10 seats; a renewal type goes with an annual plan only."""
    out = []
    plan = data.get("plan", "FLEXIBLE")
    seats = _int(data.get("seats"))
    if plan == "TRIAL" and seats is not None and seats > TRIAL_MAX_SEATS:
        out.append(
            Problem(f"{at}seats", f"a TRIAL subscription has at most {TRIAL_MAX_SEATS} seats", True)
        )
    if data.get("renewal_type") is not None and isinstance(plan, str) and plan not in ANNUAL_PLANS:
        out.append(
            Problem(f"{at}renewal_type", f"applies to annual plans only, not {plan}", rule=True)
        )
    return out


def annual_needs_seats(data: dict[str, Any], at: str = "") -> list[Problem]:
    if data.get("plan") in ANNUAL_PLANS and data.get("seats") is None:
        return [Problem(f"{at}seats", "an annual plan needs seats (the committed seat count)")]
    return []


def one_per_sku(data: dict[str, Any], at: str = "") -> list[Problem]:
    seen: set[str] = set()
    out = []
    for i, item in enumerate(_items(data.get("subscriptions"))):
        sku = item.get("sku_id")
        if isinstance(sku, str) and sku in seen:
            out.append(Problem(f"{at}subscriptions.{i}.sku_id", f"{sku} appears twice"))
        if isinstance(sku, str):
            seen.add(sku)
    return out


def something_to_change(data: dict[str, Any], at: str = "") -> list[Problem]:
    if all(
        data.get(k) in (None, {}, "") for k in ("alternate_email", "phone_number", "postal_address")
    ):
        return [
            Problem(
                f"{at}alternate_email",
                "name at least one of alternate_email, phone_number, postal_address",
            )
        ]
    return []


def workspace_cancel(data: dict[str, Any], at: str = "") -> list[Problem]:
    """Google Workspace subscriptions are handed to Google (transfer_to_direct), not cancelled."""
    sku = data.get("sku_id")
    product = SKUS[sku][0] if isinstance(sku, str) and sku in SKUS else None
    if data.get("deletion_type") == "cancel" and product == WORKSPACE:
        return [
            Problem(
                f"{at}deletion_type",
                "a Google Workspace subscription cannot be cancelled outright; use "
                "transfer_to_direct (the customer then pays Google directly)",
                rule=True,
            )
        ]
    return []


def order(data: dict[str, Any], at: str = "") -> list[Problem]:
    """A whole order: its customer, its subscriptions, and an admin on the customer's domain."""
    out = []
    cust = _dict(data.get("customer"))
    out += customer(cust, f"{at}customer.")
    for i, item in enumerate(_items(data.get("subscriptions"))):
        out += plan_seats(item, f"{at}subscriptions.{i}.")
    out += one_per_sku(data, at)
    admin = _dict(data.get("admin"))
    email, domain = _text(admin.get("primary_email")), _text(cust.get("domain"))
    if email and domain and "@" in email and email.rsplit("@", 1)[1] != domain:
        out.append(
            Problem(
                f"{at}admin.primary_email", f"must be on the customer's domain ({domain})", True
            )
        )
    return out
