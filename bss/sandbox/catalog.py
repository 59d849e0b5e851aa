"""Google's resale catalog and its plan and seat rules."""

from __future__ import annotations

from bss.sandbox.errors import bad_request

WORKSPACE = "Google-Apps"
#: skuId -> (productId, skuName)
SKUS = {
    "1010020027": (WORKSPACE, "Google Workspace Business Starter"),
    "1010020028": (WORKSPACE, "Google Workspace Business Standard"),
    "1010020025": (WORKSPACE, "Google Workspace Business Plus"),
    "1010020026": (WORKSPACE, "Google Workspace Enterprise Standard"),
    "1010020020": (WORKSPACE, "Google Workspace Enterprise Plus"),
    "1010060001": (WORKSPACE, "Google Workspace Essentials"),
    "1010020030": (WORKSPACE, "Google Workspace Frontline Starter"),
    "1010010001": ("101001", "Cloud Identity Free"),
    "Google-Vault": ("Google-Vault", "Google Vault"),
    "Google-Vault-Former-Employee": ("Google-Vault", "Google Vault - Former Employee"),
}
PRODUCT_NAMES = {
    WORKSPACE: "Google Workspace",
    "101001": "Cloud Identity",
    "Google-Vault": "Google Vault",
}
ANNUAL_PLANS = ("ANNUAL_MONTHLY_PAY", "ANNUAL_YEARLY_PAY")
PLANS = (*ANNUAL_PLANS, "FLEXIBLE", "TRIAL", "FREE")
#: What Google answers with for a plan name it was given.
PLAN_READ_AS = {"ANNUAL_MONTHLY_PAY": "ANNUAL"}
#: Plan names Google answers with, back to the plan they mean.
PLAN_WRITTEN_AS = {"ANNUAL": "ANNUAL_MONTHLY_PAY"}
TRIAL_MAX_SEATS = 10
TRIAL_DAYS = 30
RENEWAL_TYPES = (
    "AUTO_RENEW_MONTHLY_PAY",
    "AUTO_RENEW_YEARLY_PAY",
    "RENEW_CURRENT_USERS_MONTHLY_PAY",
    "RENEW_CURRENT_USERS_YEARLY_PAY",
    "SWITCH_TO_PAY_AS_YOU_GO",
    "CANCEL",
)
DEFAULT_RENEWAL = {
    "ANNUAL_MONTHLY_PAY": "RENEW_CURRENT_USERS_MONTHLY_PAY",
    "ANNUAL_YEARLY_PAY": "RENEW_CURRENT_USERS_YEARLY_PAY",
}
YEAR_MS = 365 * 24 * 3600 * 1000


def sku(sku_id: str | None) -> tuple[str, str]:
    """(productId, skuName) of a SKU, or 400 for one Google does not sell."""
    if not sku_id:
        raise bad_request("Required field must not be blank: skuId", reason="required")
    if sku_id not in SKUS:
        raise bad_request(f"Invalid Value: skuId {sku_id}")
    return SKUS[sku_id]


def plan_name(raw: object, *, sku_id: str) -> str:
    """The plan a request asks for, checked against the SKU."""
    if not raw:
        raise bad_request("Required field must not be blank: plan.planName", reason="required")
    name = PLAN_WRITTEN_AS.get(str(raw), str(raw))
    if name not in PLANS:
        raise bad_request(f"Invalid Value: plan.planName {raw}")
    if (name == "FREE") != (sku_id == "1010010001"):
        raise bad_request(f"Invalid Value: plan {raw} is not offered for SKU {sku_id}")
    return name


def is_annual(plan: str) -> bool:
    return PLAN_WRITTEN_AS.get(plan, plan) in ANNUAL_PLANS


def _count(value: object, field: str) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 50000:
        raise bad_request(f"Invalid Value: seats.{field}")
    return value


def seats(raw: object, *, plan: str, licensed: int = 0, annual_floor: int = 0) -> dict:
    """The seats block for ``plan``, enforcing Google's seat rules.

    Annual plans take numberOfSeats, which cannot go down before renewal; FLEXIBLE and TRIAL
    take maximumNumberOfSeats (TRIAL at most 10); no plan goes below the licenses in use.
    """
    raw = raw if isinstance(raw, dict) else {}
    plan = PLAN_WRITTEN_AS.get(plan, plan)
    if plan in ANNUAL_PLANS:
        if raw.get("numberOfSeats") is None:
            raise bad_request(
                "Required field must not be blank: seats.numberOfSeats "
                "(annual plans use numberOfSeats)",
                reason="required",
            )
        count = _count(raw["numberOfSeats"], "numberOfSeats")
        if count < annual_floor:
            raise bad_request(
                "Invalid Value: seats.numberOfSeats cannot be reduced on an annual "
                "plan before its renewal date"
            )
        out = {"numberOfSeats": count}
    elif plan == "FREE" and raw.get("maximumNumberOfSeats") is None:
        return {"kind": "subscriptions#seats"}
    else:
        if raw.get("maximumNumberOfSeats") is None:
            raise bad_request(
                "Required field must not be blank: seats.maximumNumberOfSeats "
                "(FLEXIBLE and TRIAL plans use maximumNumberOfSeats)",
                reason="required",
            )
        count = _count(raw["maximumNumberOfSeats"], "maximumNumberOfSeats")
        if plan == "TRIAL" and count > TRIAL_MAX_SEATS:
            raise bad_request(f"Invalid Value: a TRIAL is limited to {TRIAL_MAX_SEATS} seats")
        out = {"maximumNumberOfSeats": count}
    if count < licensed:
        raise bad_request(
            f"Invalid Value: {count} seats is fewer than the {licensed} licenses assigned"
        )
    return {"kind": "subscriptions#seats", **out}


def seat_cap(subscription: dict) -> int | None:
    """How many licenses the subscription allows (None: no limit)."""
    block = subscription.get("seats") or {}
    return block.get("numberOfSeats", block.get("maximumNumberOfSeats"))


def limited_text(raw: object, field: str, limit: int) -> str | None:
    if raw is None:
        return None
    if len(str(raw)) > limit:
        raise bad_request(f"Invalid Value: {field} is longer than {limit} characters")
    return str(raw)
