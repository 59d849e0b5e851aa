"""What the operations share: how params name customers and SKUs, and how to find them at Google."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from bss.errors import PermanentGoogleError, RuleRefused
from bss.operations.base import MARKER_SUFFIX, Step, StepContext

DOMAIN_PATTERN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
CUSTOMER_ID_PATTERN = r"^C[0-9a-zA-Z]{4,20}$"

WORKSPACE = "Google-Apps"
# Google Workspace SKUs we sell, with the License Manager product each belongs to.
SKUS: dict[str, tuple[str, str]] = {
    "1010020027": ("Google-Apps", "Google Workspace Business Starter"),
    "1010020028": ("Google-Apps", "Google Workspace Business Standard"),
    "1010020025": ("Google-Apps", "Google Workspace Business Plus"),
    "1010020026": ("Google-Apps", "Google Workspace Enterprise Standard"),
    "1010020020": ("Google-Apps", "Google Workspace Enterprise Plus"),
    "1010060001": ("Google-Apps", "Google Workspace Essentials"),
    "1010020030": ("Google-Apps", "Google Workspace Frontline Starter"),
    "1010010001": ("101001", "Cloud Identity Free"),
    "Google-Vault": ("Google-Vault", "Google Vault"),
}
ANNUAL_PLANS = ("ANNUAL_MONTHLY_PAY", "ANNUAL_YEARLY_PAY")
TRIAL_MAX_SEATS = 10
# Google suspends a new customer's subscriptions until its admin accepts the Terms of Service.
TOS_PENDING = "PENDING_TOS_ACCEPTANCE"
ADMIN_CONSOLE = "https://admin.google.com/"
# Clock skew between Google and us allowed when deciding a resource was created by this job.
SKEW = timedelta(seconds=5)


def claim(step: str) -> Step:
    """A marker step saved just before `step`, which creates something at Google.

    On a retry it tells whether an earlier attempt got as far as `step` (and may have made the
    change, its answer lost) or not (then whatever exists at Google was there before this job).
    """
    return (step + MARKER_SUFFIX, lambda ctx: {})


def tried_before(ctx: StepContext, step: str) -> bool:
    """Whether an earlier attempt of this job reached `step` (see `claim`)."""
    marker = step + MARKER_SUFFIX
    return marker in ctx.checkpoint and marker not in ctx.fresh


def parse_google_time(value: Any) -> datetime | None:
    """Google's times: RFC 3339 (Directory) or milliseconds since the epoch (Reseller)."""
    if value in (None, ""):
        return None
    text = str(value)
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None


def created_since_accepted(ctx: StepContext, value: Any) -> bool:
    """Whether Google's creation time `value` is after this job was accepted (within SKEW)."""
    created = parse_google_time(value)
    accepted = ctx.accepted_at
    if created is None or accepted is None:
        return False
    if accepted.tzinfo is None:
        accepted = accepted.replace(tzinfo=UTC)
    return created >= accepted - SKEW


def _customer_ref(value: str) -> str:
    if re.match(CUSTOMER_ID_PATTERN, value):
        return value
    lowered = value.lower()
    if not re.match(DOMAIN_PATTERN, lowered):
        raise ValueError("must be the customer's primary domain or its Google id (C0...)")
    return lowered


def _sku(value: str) -> str:
    if value not in SKUS:
        known = ", ".join(f"{k} ({v[1]})" for k, v in SKUS.items())
        raise ValueError(f"unknown SKU; known SKUs: {known}")
    return value


# What the validators accept, for the OpenAPI document (the validators give the messages).
_DOMAIN_ANY_CASE = r"([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
CUSTOMER_REF_SCHEMA = rf"^({CUSTOMER_ID_PATTERN[1:-1]}|{_DOMAIN_ANY_CASE})$"

CustomerRef = Annotated[
    str,
    Field(
        min_length=3,
        max_length=253,
        description="The customer's primary domain or id",
        json_schema_extra={"pattern": CUSTOMER_REF_SCHEMA},
    ),
    AfterValidator(_customer_ref),
]
SkuId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=40,
        description="Google's SKU id, e.g. 1010020027",
        json_schema_extra={"enum": list(SKUS)},
    ),
    AfterValidator(_sku),
]
PurchaseOrderId = Annotated[str, Field(max_length=80, description="Your purchase order id")]


def product_of(sku_id: str) -> str:
    """The License Manager product id of a SKU."""
    return SKUS[sku_id][0]


def sku_name(sku_id: str) -> str:
    """The SKU's name as billing engineers know it."""
    return SKUS.get(sku_id, ("", sku_id))[1]


def is_partial_view(customer: dict[str, Any]) -> bool:
    """Google shows another reseller's customer with only its id, domain and type."""
    return "alternateEmail" not in customer and "postalAddress" not in customer


def find_customer(ctx: StepContext, ref: str) -> dict[str, Any]:
    """The customer `ref` (domain or id) that this reseller manages, or a clear refusal."""
    found = ctx.gateway.get_or_none(
        "reseller.customers.get", lambda svc: svc.customers().get(customerId=ref)
    )
    if found is None:
        raise PermanentGoogleError(
            f"Google has no customer {ref}.",
            status=404,
            reason="notFound",
            method="reseller.customers.get",
            hint="Create the customer first (customer.create or order.create), or check the "
            "domain or customer id.",
        )
    if is_partial_view(found):
        raise PermanentGoogleError(
            f"{ref} is a Google customer of another reseller.",
            status=200,
            reason="managedByAnotherReseller",
            method="reseller.customers.get",
            hint="Transfer it first with customer.transfer and the customer's transfer token.",
        )
    return dict(found)


def customer_id(ctx: StepContext, ref: str) -> str:
    """The customer's id, from an earlier step's checkpoint or from Google."""
    done = ctx.checkpoint.get("customer")
    if isinstance(done, dict) and done.get("customerId"):
        return str(done["customerId"])
    return str(find_customer(ctx, ref)["customerId"])


def list_subscriptions(ctx: StepContext, cid: str) -> list[dict[str, Any]]:
    """Every subscription of customer `cid` under this reseller, all pages."""
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:

        def list_page(svc: Any, t: str | None = token) -> Any:
            return svc.subscriptions().list(customerId=cid, maxResults=100, pageToken=t)

        page = ctx.gateway.call("reseller.subscriptions.list", list_page)
        items.extend(page.get("subscriptions") or [])
        token = page.get("nextPageToken")
        if not token:
            return items


def find_subscription(ctx: StepContext, cid: str, sku_id: str) -> dict[str, Any] | None:
    """The customer's subscription to `sku_id` (subscription ids change, SKUs do not)."""
    for sub in list_subscriptions(ctx, cid):
        if sub.get("skuId") == sku_id:
            return sub
    return None


def require_subscription(ctx: StepContext, cid: str, ref: str, sku_id: str) -> dict[str, Any]:
    """The customer's subscription to `sku_id`, or a refusal naming what is missing."""
    sub = find_subscription(ctx, cid, sku_id)
    if sub is None:
        raise PermanentGoogleError(
            f"{ref} has no {sku_name(sku_id)} subscription ({sku_id}).",
            status=404,
            reason="notFound",
            method="reseller.subscriptions.list",
            hint="Create it with subscription.create, or check the SKU.",
        )
    return sub


def plan_of(sub: dict[str, Any]) -> str:
    """The subscription's plan; Google answers ANNUAL for ANNUAL_MONTHLY_PAY."""
    name = str((sub.get("plan") or {}).get("planName") or "")
    return "ANNUAL_MONTHLY_PAY" if name == "ANNUAL" else name


def seats_of(sub: dict[str, Any]) -> int | None:
    """The seat count that matters for the subscription's plan."""
    seats = sub.get("seats") or {}
    key = "numberOfSeats" if plan_of(sub) in ANNUAL_PLANS else "maximumNumberOfSeats"
    value = seats.get(key)
    return int(value) if value is not None else None


def refuse(message: str, hint: str, *, reason: str) -> RuleRefused:
    """A refusal of ours, made before calling Google, in a billing engineer's terms."""
    return RuleRefused(message, status=None, reason=reason, method=None, hint=hint)


def subscription_summary(sub: dict[str, Any]) -> dict[str, Any]:
    """What a job result says about a subscription, and what it waits for if it is suspended
    until the customer's admin accepts Google's Terms of Service (new customers)."""
    out = {
        "subscriptionId": sub.get("subscriptionId"),
        "skuId": sub.get("skuId"),
        "status": sub.get("status"),
        "plan": plan_of(sub),
        "seats": seats_of(sub),
        "renewalType": (sub.get("renewalSettings") or {}).get("renewalType"),
    }
    if sub.get("status") == "SUSPENDED" and TOS_PENDING in (sub.get("suspensionReasons") or []):
        out["pending"] = "terms_of_service"
        out["pending_action"] = (
            "The customer's admin signs in to the Google Admin console once and accepts Google's "
            "Terms of Service; the subscription then turns ACTIVE by itself."
        )
        out["admin_console_url"] = sub.get("resourceUiUrl") or ADMIN_CONSOLE
    return out


def require_active(sub: dict[str, Any], action: str) -> None:
    """Google refuses changes to a suspended subscription: say why it is suspended."""
    if sub.get("status") != "SUSPENDED":
        return
    reasons = set(sub.get("suspensionReasons") or [])
    hint = "Activate it first (subscription.activate)."
    if "PENDING_TOS_ACCEPTANCE" in reasons:
        hint = (
            "The customer's admin must sign in to admin.google.com and accept Google's Terms "
            "of Service; the subscription then becomes active."
        )
    elif "RESELLER_INITIATED" not in reasons:
        hint = "Google suspended it; check the customer in the Partner Sales Console."
    why = ", ".join(sorted(reasons)) or "OTHER"
    raise refuse(
        f"Cannot {action}: the subscription is suspended ({why}).",
        hint,
        reason="subscriptionSuspended",
    )
