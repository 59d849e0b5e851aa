"""Reseller API v1: subscriptions."""

from __future__ import annotations

from flask import Blueprint, Response, request

from bss.sandbox import catalog
from bss.sandbox.api import api_method, body, no_content, ok, page
from bss.sandbox.customers import acting_reseller, managed_customer, transfer_token_valid
from bss.sandbox.errors import bad_request, conflict, forbidden, not_found, precondition
from bss.sandbox.model import (
    age,
    licensed_count,
    new_subscription,
    set_plan,
    subscription_view,
    suspend,
)
from bss.sandbox.notifications import seats_event, subscription_event
from bss.sandbox.state import State, current_state

bp = Blueprint("subscriptions", __name__, url_prefix="/apps/reseller/v1")

NOT_OURS = "Authenticated user is not authorized to perform this action."


def _renewal_type(raw: object) -> str | None:
    if raw is None:
        return None
    if raw not in catalog.RENEWAL_TYPES:
        raise bad_request(f"Invalid Value: renewalSettings.renewalType {raw}")
    return str(raw)


def _subscription(state: State, customerId: str, subscriptionId: str) -> dict:  # noqa: N803
    reseller = acting_reseller(state)
    customer = managed_customer(state, reseller, customerId)
    subscription = state.subscriptions.get(subscriptionId)
    if subscription is None or subscription["customerId"] != customer["customerId"]:
        raise not_found(f"Resource Not Found: subscription {subscriptionId}")
    if subscription["_reseller"] != reseller["domain"]:
        raise forbidden(NOT_OURS)
    age(state, subscription)
    return subscription


def _not_suspended(subscription: dict) -> None:
    if subscription["status"] == "SUSPENDED":
        reasons = ", ".join(subscription["suspensionReasons"])
        raise bad_request(f"The subscription is suspended ({reasons}).", reason="badRequest")


def _new_id(state: State, subscription: dict) -> None:
    """Google gives a subscription a new id when its plan or SKU changes."""
    del state.subscriptions[subscription["subscriptionId"]]
    subscription["subscriptionId"] = state.random_digits(9)
    state.subscriptions[subscription["subscriptionId"]] = subscription


@bp.post("/customers/<customerId>/subscriptions")
@api_method("reseller.subscriptions.insert")
def insert_subscription(customerId: str) -> Response:  # noqa: N803
    state = current_state()
    reseller = acting_reseller(state)
    us = reseller["domain"]
    customer = state.customer(customerId)
    if customer is None:
        raise not_found(f"Resource Not Found: {customerId}")
    token = request.args.get("customerAuthToken")
    token_ok = transfer_token_valid(state, customer, token)
    if customer["_reseller"] != us and not token_ok:
        raise forbidden("Invalid customerAuthToken." if token else NOT_OURS)
    data = body()
    # Empty when missing, which catalog.sku() answers with the same 400 as for None.
    sku_id: str = data.get("skuId") or ""
    catalog.sku(sku_id)
    plan = catalog.plan_name((data.get("plan") or {}).get("planName"), sku_id=sku_id)
    seats = catalog.seats(
        data.get("seats"), plan=plan, licensed=licensed_count(state, customer["customerId"], sku_id)
    )
    po = catalog.limited_text(data.get("purchaseOrderId"), "purchaseOrderId", 80)
    deal = catalog.limited_text(data.get("dealCode"), "dealCode", 100)
    renewal = _renewal_type((data.get("renewalSettings") or {}).get("renewalType"))
    held = state.subscriptions_of(customer["customerId"])
    if any(s["skuId"] == sku_id and s["_reseller"] == us for s in held):
        raise conflict(f"The customer already has a subscription for SKU {sku_id}.")
    transferred = [s for s in held if s["skuId"] == sku_id]
    if transferred and not token_ok:
        raise forbidden(
            "Another reseller holds this subscription; a transfer needs customerAuthToken."
        )
    source = _switch_source(held, us, sku_id)
    for old in transferred:
        del state.subscriptions[old["subscriptionId"]]
        subscription_event(state, old, "CANCELLED", cancellation_reason="RELATIONSHIP_ENDED")
    customer["_reseller"] = us
    created = new_subscription(
        state,
        customer,
        sku_id=sku_id,
        plan=plan,
        seats=seats,
        purchase_order_id=po,
        deal_code=deal,
        renewal_type=renewal,
        active=True if transferred else None,
    )
    if source is not None:
        for lic in state.licenses.values():
            if lic["_customer"] == customer["customerId"] and lic["skuId"] == source["skuId"]:
                lic.update(skuId=sku_id, skuName=created["skuName"])
        state.licenses = {
            f"{v['productId']}|{v['skuId']}|{v['userId']}": v for v in state.licenses.values()
        }
        created.update(status=source["status"], suspensionReasons=list(source["suspensionReasons"]))
        del state.subscriptions[source["subscriptionId"]]
    previous = source["subscriptionId"] if source else None
    subscription_event(state, created, "SKU_CHANGED" if source else "CREATED", previous_id=previous)
    return ok(subscription_view(state, created))


def _switch_source(held: list[dict], us: str, sku_id: str) -> dict | None:
    """The subscription a switch (action=switch or sourceSkuId) upgrades or downgrades."""
    action, source_sku = request.args.get("action"), request.args.get("sourceSkuId")
    if action != "switch" and not source_sku:
        return None
    product = catalog.SKUS[sku_id][0]
    candidates = [
        s
        for s in held
        if s["_reseller"] == us
        and s["_product"] == product
        and s["skuId"] != sku_id
        and (not source_sku or s["skuId"] == source_sku)
    ]
    if not candidates:
        raise not_found(
            f"Resource Not Found: no subscription to switch from ({source_sku or product})"
        )
    return candidates[0]


@bp.get("/customers/<customerId>/subscriptions/<subscriptionId>")
@api_method("reseller.subscriptions.get")
def get_subscription(customerId: str, subscriptionId: str) -> Response:  # noqa: N803
    state = current_state()
    return ok(subscription_view(state, _subscription(state, customerId, subscriptionId)))


@bp.get("/subscriptions")
@api_method("reseller.subscriptions.list")
def list_subscriptions() -> Response:
    state = current_state()
    reseller = acting_reseller(state)
    key, prefix = request.args.get("customerId"), request.args.get("customerNamePrefix")
    token = request.args.get("customerAuthToken")
    us = reseller["domain"]
    transferable: dict | None = None
    wanted = [s for s in state.subscriptions.values() if s["_reseller"] == us]
    if key:
        customer = state.customer(key)
        if customer is None:
            raise not_found(f"Resource Not Found: {key}")
        if transfer_token_valid(state, customer, token):
            # With the customer's transfer token, a reseller sees what it could take over.
            transferable = customer["_transfer_token"]
            wanted = list(state.subscriptions.values())
        elif customer["_reseller"] != us:
            raise forbidden(NOT_OURS)
        wanted = [s for s in wanted if s["customerId"] == customer["customerId"]]
    if prefix:
        wanted = [s for s in wanted if s["customerDomain"].startswith(prefix.lower())]
    wanted.sort(key=lambda s: s["_seq"])
    for subscription in wanted:
        age(state, subscription)
    chunk, next_token = page(wanted, default=20, maximum=100)
    views = [subscription_view(state, s) for s in chunk]
    if transferable:
        expires = transferable["expires_at"]
        for view in views:
            if state.subscriptions[view["subscriptionId"]]["_reseller"] == us:
                continue
            view["transferInfo"] = {
                "minimumTransferableSeats": view["seats"]["licensedNumberOfSeats"],
                "transferabilityExpirationTime": str(int(expires * 1000)),
            }
    answer: dict = {"kind": "reseller#subscriptions"}
    if views:
        answer["subscriptions"] = views
    if next_token:
        answer["nextPageToken"] = next_token
    return ok(answer)


@bp.post("/customers/<customerId>/subscriptions/<subscriptionId>/changeSeats")
@api_method("reseller.subscriptions.changeSeats")
def change_seats(customerId: str, subscriptionId: str) -> Response:  # noqa: N803
    state = current_state()
    subscription = _subscription(state, customerId, subscriptionId)
    _not_suspended(subscription)
    plan = subscription["_plan"]
    floor = subscription["seats"].get("numberOfSeats", 0) if catalog.is_annual(plan) else 0
    subscription["seats"] = catalog.seats(
        body(),
        plan=plan,
        annual_floor=floor,
        licensed=licensed_count(state, subscription["customerId"], subscription["skuId"]),
    )
    subscription_event(state, subscription, seats_event(subscription))
    return ok(subscription_view(state, subscription))


@bp.post("/customers/<customerId>/subscriptions/<subscriptionId>/changePlan")
@api_method("reseller.subscriptions.changePlan")
def change_plan(customerId: str, subscriptionId: str) -> Response:  # noqa: N803
    state = current_state()
    subscription = _subscription(state, customerId, subscriptionId)
    _not_suspended(subscription)
    data = body()
    plan = catalog.plan_name(data.get("planName"), sku_id=subscription["skuId"])
    current = subscription["_plan"]
    if plan == "TRIAL":
        raise bad_request("Invalid Value: a subscription cannot change to the TRIAL plan")
    if plan == current:
        raise bad_request(f"Invalid Value: the subscription is already on {data['planName']}")
    in_trial = (subscription.get("trialSettings") or {}).get("isInTrial")
    if catalog.is_annual(current) and not catalog.is_annual(plan) and not in_trial:
        raise precondition(
            "An annual commitment cannot change to a flexible plan before it "
            "ends; set renewalType SWITCH_TO_PAY_AS_YOU_GO instead."
        )
    seats = catalog.seats(
        data.get("seats"),
        plan=plan,
        licensed=licensed_count(state, subscription["customerId"], subscription["skuId"]),
    )
    set_plan(state, subscription, plan, seats)
    subscription["purchaseOrderId"] = (
        catalog.limited_text(data.get("purchaseOrderId"), "purchaseOrderId", 80)
        or subscription["purchaseOrderId"]
    )
    subscription["dealCode"] = (
        catalog.limited_text(data.get("dealCode"), "dealCode", 100) or subscription["dealCode"]
    )
    _new_id(state, subscription)
    subscription_event(state, subscription, "PRICE_PLAN_SWITCHED", previous_id=subscriptionId)
    return ok(subscription_view(state, subscription))


@bp.post("/customers/<customerId>/subscriptions/<subscriptionId>/changeRenewalSettings")
@api_method("reseller.subscriptions.changeRenewalSettings")
def change_renewal(customerId: str, subscriptionId: str) -> Response:  # noqa: N803
    state = current_state()
    subscription = _subscription(state, customerId, subscriptionId)
    _not_suspended(subscription)
    renewal = _renewal_type(body().get("renewalType"))
    if renewal is None:
        raise bad_request("Required field must not be blank: renewalType", reason="required")
    if not catalog.is_annual(subscription["_plan"]):
        raise bad_request("Invalid Value: renewal settings apply to annual plans only")
    subscription["renewalSettings"]["renewalType"] = renewal
    subscription_event(state, subscription, "RENEWAL_SETTING_CHANGED")
    return ok(subscription_view(state, subscription))


@bp.post("/customers/<customerId>/subscriptions/<subscriptionId>/startPaidService")
@api_method("reseller.subscriptions.startPaidService")
def start_paid_service(customerId: str, subscriptionId: str) -> Response:  # noqa: N803
    state = current_state()
    subscription = _subscription(state, customerId, subscriptionId)
    _not_suspended(subscription)
    if not (subscription.get("trialSettings") or {}).get("isInTrial"):
        raise precondition("The subscription is not in a free trial.")
    if subscription["_plan"] == "TRIAL":
        raise precondition("Set up a paid plan with changePlan before starting paid service.")
    subscription["trialSettings"] = {"isInTrial": False}
    subscription_event(state, subscription, "PAID_SERVICE_STARTED")
    return ok(subscription_view(state, subscription))


@bp.post("/customers/<customerId>/subscriptions/<subscriptionId>/suspend")
@api_method("reseller.subscriptions.suspend")
def suspend_subscription(customerId: str, subscriptionId: str) -> Response:  # noqa: N803
    state = current_state()
    subscription = _subscription(state, customerId, subscriptionId)
    suspend(subscription, "RESELLER_INITIATED")
    subscription_event(state, subscription, "SUSPENDED")
    return ok(subscription_view(state, subscription))


@bp.post("/customers/<customerId>/subscriptions/<subscriptionId>/activate")
@api_method("reseller.subscriptions.activate")
def activate_subscription(customerId: str, subscriptionId: str) -> Response:  # noqa: N803
    state = current_state()
    subscription = _subscription(state, customerId, subscriptionId)
    reasons = subscription["suspensionReasons"]
    if subscription["status"] == "SUSPENDED" and "RESELLER_INITIATED" not in reasons:
        raise precondition(
            "Only a subscription the reseller suspended can be activated; it is "
            f"suspended for {', '.join(reasons)}."
        )
    if "RESELLER_INITIATED" in reasons:
        reasons.remove("RESELLER_INITIATED")
    if not reasons:
        subscription["status"] = "ACTIVE"
        subscription_event(state, subscription, "ACTIVATED")
    return ok(subscription_view(state, subscription))


@bp.delete("/customers/<customerId>/subscriptions/<subscriptionId>")
@api_method("reseller.subscriptions.delete")
def delete_subscription(customerId: str, subscriptionId: str) -> Response:  # noqa: N803
    state = current_state()
    subscription = _subscription(state, customerId, subscriptionId)
    kind = request.args.get("deletionType")
    if not kind:
        raise bad_request("Required parameter: deletionType", reason="required")
    if kind not in ("cancel", "transfer_to_direct"):
        raise bad_request(f"Invalid Value: deletionType {kind}")
    customer = state.customers[subscription["customerId"]]
    if kind == "cancel" and subscription["_product"] == catalog.WORKSPACE:
        raise bad_request(
            "Invalid Value: deletionType cancel does not apply to Google "
            "Workspace subscriptions; use transfer_to_direct"
        )
    if kind == "transfer_to_direct":
        has_admin = any(
            u["customerId"] == customer["customerId"] and u["isAdmin"] for u in state.users.values()
        )
        if not has_admin:
            raise precondition(
                "The customer has no administrator, so the subscription "
                "cannot be transferred to direct."
            )
    else:
        for key in [
            k
            for k, v in state.licenses.items()
            if v["_customer"] == customer["customerId"] and v["skuId"] == subscription["skuId"]
        ]:
            del state.licenses[key]
    del state.subscriptions[subscription["subscriptionId"]]
    ended = "SERVICE_TERMINATED" if kind == "cancel" else "RELATIONSHIP_ENDED"
    subscription_event(state, subscription, "CANCELLED", cancellation_reason=ended)
    remaining = any(
        s["customerId"] == customer["customerId"] and s["_reseller"] == subscription["_reseller"]
        for s in state.subscriptions.values()
    )
    if kind == "transfer_to_direct" and not remaining:
        customer["_reseller"] = None
    return no_content()
