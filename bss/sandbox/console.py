"""Changes made outside the Reseller API, as in Google's Admin console (or by Google itself).

``POST /_sandbox/customers/<id or domain>/subscriptions/<skuId>/console`` with exactly one of
``seats``, ``plan``, ``renewal``, ``suspend``, ``activate``, ``transfer_to``, ``delete``. Each
request is checked whole before anything changes (400/404 with a message, nothing applied);
then the change is applied, its event published, and the subscription answered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Blueprint, Response

from bss.sandbox import catalog
from bss.sandbox.control import payload
from bss.sandbox.errors import ApiError, ControlError, json_response
from bss.sandbox.model import licensed_count, set_plan, subscription_view, suspend
from bss.sandbox.notifications import seats_event, subscription_event
from bss.sandbox.state import State, current_state

bp = Blueprint("console", __name__, url_prefix="/_sandbox")

CHANGES = ("seats", "plan", "renewal", "suspend", "activate", "transfer_to", "delete")
#: Suspension reasons Google itself sets (its list: PENDING_TOS_ACCEPTANCE,
#: RENEWAL_WITH_TYPE_CANCEL, RESELLER_INITIATED, TRIAL_ENDED, OTHER); billing is OTHER too.
GOOGLE_SUSPENSIONS = ("OTHER",)


T = TypeVar("T")


def _checked(call: Callable[[], T], what: str) -> T:
    """Run a catalog check, turning its API error into the control API's 400."""
    try:
        return call()
    except ApiError as error:
        raise ControlError(400, f"{what}: {error.message}") from error


def _find(state: State, key: str, sku_id: str) -> tuple[dict, dict]:
    customer = state.customer(key)
    if customer is None:
        raise ControlError(404, f"no customer {key!r}")
    held = [s for s in state.subscriptions_of(customer["customerId"]) if s["skuId"] == sku_id]
    if not held:
        raise ControlError(404, f"{customer['customerDomain']} has no subscription to {sku_id}")
    return customer, held[0]


def _answer(state: State, subscription: dict) -> Response:
    return json_response(
        dict(subscription_view(state, subscription), reseller=subscription["_reseller"])
    )


def _seats(state: State, sub: dict, raw: object) -> Callable[[], Response]:
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise ControlError(400, "seats must be a whole number")
    plan = sub["_plan"]
    annual = catalog.is_annual(plan)
    field = "numberOfSeats" if annual else "maximumNumberOfSeats"
    floor = sub["seats"].get("numberOfSeats", 0) if annual else 0
    licensed = licensed_count(state, sub["customerId"], sub["skuId"])
    block = _checked(
        lambda: catalog.seats({field: raw}, plan=plan, licensed=licensed, annual_floor=floor),
        "seats",
    )

    def apply() -> Response:
        sub["seats"] = block
        subscription_event(state, sub, seats_event(sub))
        return _answer(state, sub)

    return apply


def _plan(state: State, sub: dict, raw: object) -> Callable[[], Response]:
    plan = _checked(lambda: catalog.plan_name(raw, sku_id=sub["skuId"]), "plan")
    if plan == "TRIAL" or plan == sub["_plan"]:
        raise ControlError(
            400, f"plan: the subscription cannot change to {raw} from {sub['_plan']}"
        )
    count = sub["seats"].get("numberOfSeats") or sub["seats"].get("maximumNumberOfSeats") or 1
    field = "numberOfSeats" if catalog.is_annual(plan) else "maximumNumberOfSeats"
    licensed = licensed_count(state, sub["customerId"], sub["skuId"])
    block = _checked(lambda: catalog.seats({field: count}, plan=plan, licensed=licensed), "plan")

    def apply() -> Response:
        old_id = sub["subscriptionId"]
        set_plan(state, sub, plan, dict(block))
        del state.subscriptions[old_id]
        sub["subscriptionId"] = state.random_digits(9)
        state.subscriptions[sub["subscriptionId"]] = sub
        subscription_event(state, sub, "PRICE_PLAN_SWITCHED", previous_id=old_id)
        return _answer(state, sub)

    return apply


def _renewal(state: State, sub: dict, raw: object) -> Callable[[], Response]:
    if raw not in catalog.RENEWAL_TYPES:
        raise ControlError(400, f"renewal must be one of {', '.join(catalog.RENEWAL_TYPES)}")
    if not catalog.is_annual(sub["_plan"]):
        raise ControlError(400, "renewal: renewal settings apply to annual plans only")

    def apply() -> Response:
        sub["renewalSettings"]["renewalType"] = raw
        subscription_event(state, sub, "RENEWAL_SETTING_CHANGED")
        return _answer(state, sub)

    return apply


def _suspend(state: State, sub: dict, raw: object) -> Callable[[], Response]:
    if raw not in GOOGLE_SUSPENSIONS:
        raise ControlError(400, f"suspend must be one of {', '.join(GOOGLE_SUSPENSIONS)}")
    if raw in sub["suspensionReasons"]:
        raise ControlError(400, f"suspend: the subscription is suspended for {raw} already")

    def apply() -> Response:
        suspend(sub, str(raw))
        subscription_event(state, sub, "SUSPENDED")
        return _answer(state, sub)

    return apply


def _activate(state: State, sub: dict, raw: object) -> Callable[[], Response]:
    if raw is not True:
        raise ControlError(400, "activate must be true")
    if not set(GOOGLE_SUSPENSIONS) & set(sub["suspensionReasons"]):
        raise ControlError(400, "activate: Google has not suspended this subscription")

    def apply() -> Response:
        for reason in GOOGLE_SUSPENSIONS:
            if reason in sub["suspensionReasons"]:
                sub["suspensionReasons"].remove(reason)
        if not sub["suspensionReasons"]:
            sub["status"] = "ACTIVE"
            subscription_event(state, sub, "ACTIVATED")
        return _answer(state, sub)

    return apply


def _transfer(state: State, customer: dict, sub: dict, raw: object) -> Callable[[], Response]:
    if not isinstance(raw, str) or not raw:
        raise ControlError(400, 'transfer_to must be "direct" or a reseller domain')
    target = None if raw.lower() == "direct" else raw.lower()
    if target is not None and target not in state.resellers:
        raise ControlError(404, f"no reseller {raw!r}")
    if target == customer["_reseller"]:
        raise ControlError(400, f"transfer_to: the customer is {raw}'s already")

    def apply() -> Response:
        # The whole customer moves, with every subscription it has.
        for moved in state.subscriptions_of(customer["customerId"]):
            old = moved["_reseller"]
            moved["_reseller"] = target
            subscription_event(
                state, moved, "CANCELLED", reseller=old, cancellation_reason="RELATIONSHIP_ENDED"
            )
            if target:
                subscription_event(state, moved, "CREATED")
        customer["_reseller"] = target
        return _answer(state, sub)

    return apply


def _delete(state: State, sub: dict, raw: object) -> Callable[[], Response]:
    if raw is not True:
        raise ControlError(400, "delete must be true")

    def apply() -> Response:
        for key in [
            k
            for k, v in state.licenses.items()
            if v["_customer"] == sub["customerId"] and v["skuId"] == sub["skuId"]
        ]:
            del state.licenses[key]
        del state.subscriptions[sub["subscriptionId"]]
        subscription_event(state, sub, "CANCELLED", cancellation_reason="SERVICE_TERMINATED")
        return json_response({"deleted": sub["subscriptionId"], "customerId": sub["customerId"]})

    return apply


@bp.post("/customers/<key>/subscriptions/<sku_id>/console")
def console_change(key: str, sku_id: str) -> Response:
    """One change made in the Admin console (or by Google); see the module docstring."""
    data = payload()
    given = [name for name in CHANGES if name in data]
    unknown = sorted(set(data) - set(CHANGES))
    if unknown or len(given) != 1:
        raise ControlError(400, f"give exactly one of {', '.join(CHANGES)}")
    name, raw = given[0], data[given[0]]
    state = current_state()
    with state.lock:
        customer, sub = _find(state, key, sku_id)
        if name == "transfer_to":
            apply = _transfer(state, customer, sub, raw)
        else:
            check = {
                "seats": _seats,
                "plan": _plan,
                "renewal": _renewal,
                "suspend": _suspend,
                "activate": _activate,
                "delete": _delete,
            }[name]
            apply = check(state, sub, raw)
        return apply()
