"""Reseller API v1: subscriptions."""

from __future__ import annotations

import copy

from flask import Blueprint, Response, request

from bss.sandbox import catalog
from bss.sandbox.api import api_method, body, no_content, ok, page
from bss.sandbox.customers import acting_reseller, managed_customer, transfer_token_valid
from bss.sandbox.errors import bad_request, conflict, forbidden, not_found, precondition
from bss.sandbox.model import public
from bss.sandbox.state import State, current_state

bp = Blueprint("subscriptions", __name__, url_prefix="/apps/reseller/v1")

DAY_MS = 24 * 3600 * 1000


def licensed_count(state: State, customer_id: str, sku_id: str) -> int:
    return sum(
        1
        for lic in state.licenses.values()
        if lic["_customer"] == customer_id and lic["skuId"] == sku_id
    )


def subscription_view(state: State, subscription: dict) -> dict:
    """The subscription as Google answers: licensedNumberOfSeats from the License Manager."""
    view = copy.deepcopy(public(subscription))
    view["seats"]["licensedNumberOfSeats"] = licensed_count(
        state, subscription["customerId"], subscription["skuId"]
    )
    if not view.get("suspensionReasons"):
        view.pop("suspensionReasons", None)
    return view


def age(state: State, subscription: dict) -> None:
    """Let the sandbox clock end trials: a TRIAL plan suspends, a paid plan starts billing."""
    trial = subscription.get("trialSettings") or {}
    if not trial.get("isInTrial") or int(trial["trialEndTime"]) > state.clock.now_ms():
        return
    trial["isInTrial"] = False
    if subscription["_plan"] == "TRIAL":
        suspend(subscription, "TRIAL_ENDED")


def suspend(subscription: dict, reason: str) -> None:
    subscription["status"] = "SUSPENDED"
    if reason not in subscription["suspensionReasons"]:
        subscription["suspensionReasons"].append(reason)


def set_plan(state: State, subscription: dict, plan: str, seats: dict) -> None:
    now = state.clock.now_ms()
    subscription["_plan"] = plan
    subscription["seats"] = seats
    subscription["plan"] = {
        "planName": catalog.PLAN_READ_AS.get(plan, plan),
        "isCommitmentPlan": plan in catalog.ANNUAL_PLANS,
    }
    if plan in catalog.ANNUAL_PLANS:
        subscription["plan"]["commitmentInterval"] = {
            "startTime": str(now),
            "endTime": str(now + catalog.YEAR_MS),
        }
        renewal = (subscription.get("renewalSettings") or {}).get("renewalType")
        subscription["renewalSettings"] = {
            "kind": "subscriptions#renewalSettings",
            "renewalType": renewal or catalog.DEFAULT_RENEWAL[plan],
        }
    else:
        subscription.pop("renewalSettings", None)


def new_subscription(
    state: State,
    customer: dict,
    *,
    sku_id: str,
    plan: str,
    seats: dict,
    purchase_order_id: str | None = None,
    deal_code: str | None = None,
    renewal_type: str | None = None,
    active: bool | None = None,
) -> dict:
    """Create and store a subscription for the customer's reseller."""
    product, sku_name = catalog.sku(sku_id)
    now = state.clock.now_ms()
    subscription = {
        "kind": "reseller#subscription",
        "customerId": customer["customerId"],
        "subscriptionId": state.random_digits(9),
        "skuId": sku_id,
        "skuName": sku_name,
        "customerDomain": customer["customerDomain"],
        "creationTime": str(now),
        "billingMethod": "ONLINE",
        "purchaseOrderId": purchase_order_id,
        "dealCode": deal_code,
        "status": "ACTIVE",
        "suspensionReasons": [],
        "trialSettings": {"isInTrial": plan == "TRIAL"},
        "resourceUiUrl": "https://admin.google.com/ac/billing/subscriptions?dn="
        + customer["customerDomain"],
        "_reseller": customer["_reseller"],
        "_product": product,
        "_seq": state.next_number(),
    }
    if plan == "TRIAL":
        subscription["trialSettings"]["trialEndTime"] = str(now + catalog.TRIAL_DAYS * DAY_MS)
    if renewal_type:
        subscription["renewalSettings"] = {"renewalType": renewal_type}
    set_plan(state, subscription, plan, seats)
    if not (customer["_tos_accepted"] if active is None else active):
        suspend(subscription, "PENDING_TOS_ACCEPTANCE")
    state.subscriptions[subscription["subscriptionId"]] = subscription
    return subscription


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
    customer = state.customer(customerId)
    if customer is None:
        raise not_found(f"Resource Not Found: {customerId}")
    token = request.args.get("customerAuthToken")
    transfer = customer["_reseller"] != reseller["domain"]
    if transfer and not token:
        raise forbidden()
    if transfer and not transfer_token_valid(state, customer, token):
        raise forbidden("Invalid customerAuthToken.")
    data = body()
    sku_id = data.get("skuId")
    catalog.sku(sku_id)
    plan = catalog.plan_name((data.get("plan") or {}).get("planName"), sku_id=sku_id)
    seats = catalog.seats(
        data.get("seats"), plan=plan, licensed=licensed_count(state, customer["customerId"], sku_id)
    )
    po = catalog.limited_text(data.get("purchaseOrderId"), "purchaseOrderId", 80)
    deal = catalog.limited_text(data.get("dealCode"), "dealCode", 100)
    renewal = _renewal_type((data.get("renewalSettings") or {}).get("renewalType"))
    mine = [s for s in state.subscriptions.values() if s["customerId"] == customer["customerId"]]
    action, source_sku = request.args.get("action"), request.args.get("sourceSkuId")
    source = None
    if action == "switch" or source_sku:
        product = catalog.SKUS[sku_id][0]
        candidates = [
            s
            for s in mine
            if s["_product"] == product
            and s["skuId"] != sku_id
            and (not source_sku or s["skuId"] == source_sku)
        ]
        if not candidates:
            raise not_found(
                f"Resource Not Found: no subscription to switch from ({source_sku or product})"
            )
        source = candidates[0]
    if any(s["skuId"] == sku_id for s in mine) and not transfer:
        raise conflict(f"The customer already has a subscription for SKU {sku_id}.")
    if transfer:
        for old in [s for s in mine if s["skuId"] == sku_id]:
            del state.subscriptions[old["subscriptionId"]]
        for other in mine:
            other["_reseller"] = reseller["domain"]
        customer["_reseller"] = reseller["domain"]
        customer["_transfer_token"] = None
    created = new_subscription(
        state,
        customer,
        sku_id=sku_id,
        plan=plan,
        seats=seats,
        purchase_order_id=po,
        deal_code=deal,
        renewal_type=renewal,
        active=True if transfer else None,
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
    return ok(subscription_view(state, created))


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
    transferable = False
    if key:
        customer = state.customer(key)
        if customer is None:
            raise not_found(f"Resource Not Found: {key}")
        if customer["_reseller"] != reseller["domain"]:
            if not transfer_token_valid(state, customer, token):
                raise forbidden()
            transferable = True
        wanted = [
            s for s in state.subscriptions.values() if s["customerId"] == customer["customerId"]
        ]
    else:
        wanted = [s for s in state.subscriptions.values() if s["_reseller"] == reseller["domain"]]
    if prefix:
        wanted = [s for s in wanted if s["customerDomain"].startswith(prefix.lower())]
    wanted.sort(key=lambda s: s["_seq"])
    for subscription in wanted:
        age(state, subscription)
    chunk, next_token = page(wanted, default=20, maximum=100)
    views = [subscription_view(state, s) for s in chunk]
    if transferable:
        expires = customer["_transfer_token"]["expires_at"]
        for view in views:
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
    return ok(subscription_view(state, subscription))


@bp.post("/customers/<customerId>/subscriptions/<subscriptionId>/suspend")
@api_method("reseller.subscriptions.suspend")
def suspend_subscription(customerId: str, subscriptionId: str) -> Response:  # noqa: N803
    state = current_state()
    subscription = _subscription(state, customerId, subscriptionId)
    suspend(subscription, "RESELLER_INITIATED")
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
    remaining = any(s["customerId"] == customer["customerId"] for s in state.subscriptions.values())
    if kind == "transfer_to_direct" and not remaining:
        customer["_reseller"] = None
    return no_content()
