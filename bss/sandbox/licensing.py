"""Enterprise License Manager API: license assignments."""

from __future__ import annotations

from flask import Blueprint, Response, request

from bss.sandbox import catalog, license_catalog
from bss.sandbox.api import api_method, body, caller, ok, page
from bss.sandbox.errors import bad_request, forbidden, not_found, precondition
from bss.sandbox.model import email_domain, etag, public
from bss.sandbox.state import State, current_state

bp = Blueprint("licensing", __name__, url_prefix="/apps/licensing/v1/product/<productId>")

NO_LICENSE = "User does not have a license for specified sku and product"


def _sku(productId: str, skuId: str) -> str:  # noqa: N803 - the discovery names
    """The SKU's name, or Google's 400 when the License Manager knows no such product or SKU."""
    return license_catalog.sku(productId, skuId)


def _user(state: State, user_id: str) -> dict:
    """A user of a customer the caller administers: 403 outside them, 404 if unknown."""
    allowed = state.administered_customers(caller().user)
    customer = state.customer(email_domain(user_id))
    if customer is None or customer["customerId"] not in allowed:
        raise forbidden("Not authorized to access the user's customer.")
    user = state.user(user_id)
    if user is None or user["customerId"] != customer["customerId"]:
        raise not_found(f"User does not exist: {user_id}")
    return user


def key(product: str, sku: str, user: str) -> str:
    return f"{product}|{sku}|{user.lower()}"


def view(assignment: dict) -> dict:
    answer = public(assignment)
    answer["etags"] = etag(assignment)
    return answer


@bp.post("/sku/<skuId>/user")
@api_method("licensing.licenseAssignments.insert")
def insert_license(productId: str, skuId: str) -> Response:  # noqa: N803
    state = current_state()
    sku_name = _sku(productId, skuId)
    productId = license_catalog.canonical(productId, skuId)  # noqa: N806
    user_id = str(body().get("userId") or "")
    if not user_id:
        raise bad_request("Required field must not be blank: userId", reason="required")
    user = _user(state, user_id)
    email, customer_id = user["primaryEmail"], user["customerId"]
    if key(productId, skuId, email) in state.licenses:
        raise precondition("User already has a license for the specified product and SKU")
    for other in state.licenses_of(customer_id):
        if other["userId"] == email and other["productId"] == productId:
            raise precondition(
                f"User already has a license for product {productId} (SKU {other['skuId']}); "
                "reassign it with patch instead"
            )
    subscription = next(
        (s for s in state.subscriptions_of(customer_id) if s["skuId"] == skuId),
        None,
    )
    if subscription is None:
        raise precondition(f"The customer has no subscription for SKU {skuId}.")
    cap = catalog.seat_cap(subscription)
    used = sum(1 for v in state.licenses_of(customer_id) if v["skuId"] == skuId)
    if cap is not None and used >= cap:
        raise precondition(f"Not enough licenses available for SKU {skuId} ({used} of {cap}).")
    assignment = {
        "kind": "licensing#licenseAssignment",
        "productId": productId,
        "productName": license_catalog.PRODUCTS[productId],
        "skuId": skuId,
        "skuName": sku_name,
        "userId": email,
        "selfLink": f"{request.host_url}apps/licensing/v1/product/{productId}/sku/{skuId}"
        f"/user/{email}",
        "_customer": customer_id,
    }
    state.licenses[key(productId, skuId, email)] = assignment
    return ok(view(assignment))


def _assignment(state: State, productId: str, skuId: str, userId: str) -> dict:  # noqa: N803
    _sku(productId, skuId)
    user = _user(state, userId)
    product = license_catalog.canonical(productId, skuId)
    assignment = state.licenses.get(key(product, skuId, user["primaryEmail"]))
    if assignment is None:
        raise not_found(NO_LICENSE)
    return assignment


@bp.get("/sku/<skuId>/user/<userId>")
@api_method("licensing.licenseAssignments.get")
def get_license(productId: str, skuId: str, userId: str) -> Response:  # noqa: N803
    state = current_state()
    return ok(view(_assignment(state, productId, skuId, userId)))


@bp.delete("/sku/<skuId>/user/<userId>")
@api_method("licensing.licenseAssignments.delete")
def delete_license(productId: str, skuId: str, userId: str) -> Response:  # noqa: N803
    state = current_state()
    assignment = _assignment(state, productId, skuId, userId)
    del state.licenses[key(assignment["productId"], skuId, assignment["userId"])]
    return ok({})


def _reassign(productId: str, skuId: str, userId: str) -> Response:  # noqa: N803
    state = current_state()
    assignment = _assignment(state, productId, skuId, userId)
    productId = assignment["productId"]  # noqa: N806 - the published one, for an alias
    target = str(body().get("skuId") or skuId)
    sku_name = _sku(productId, target)
    if target != skuId:
        if not any(
            s["customerId"] == assignment["_customer"] and s["skuId"] == target
            for s in state.subscriptions.values()
        ):
            raise precondition(f"The customer has no subscription for SKU {target}.")
        del state.licenses[key(productId, skuId, assignment["userId"])]
        assignment.update(skuId=target, skuName=sku_name)
        assignment["selfLink"] = assignment["selfLink"].replace(f"/sku/{skuId}/", f"/sku/{target}/")
        state.licenses[key(productId, target, assignment["userId"])] = assignment
    return ok(view(assignment))


@bp.patch("/sku/<skuId>/user/<userId>")
@api_method("licensing.licenseAssignments.patch")
def patch_license(productId: str, skuId: str, userId: str) -> Response:  # noqa: N803
    return _reassign(productId, skuId, userId)


@bp.put("/sku/<skuId>/user/<userId>")
@api_method("licensing.licenseAssignments.update")
def update_license(productId: str, skuId: str, userId: str) -> Response:  # noqa: N803
    return _reassign(productId, skuId, userId)


def _list(productId: str, skuId: str | None) -> Response:  # noqa: N803
    state = current_state()
    key_ = request.args.get("customerId")
    if not key_:
        raise bad_request("Required parameter: customerId", reason="required")
    customer = state.customer(key_)
    if customer is None or customer["customerId"] not in state.administered_customers(
        caller().user
    ):
        raise forbidden("Not authorized to access the customer.")
    items = sorted(
        (
            v
            for v in state.licenses.values()
            if v["_customer"] == customer["customerId"]
            and license_catalog.holds(productId, v)
            and (skuId is None or v["skuId"] == skuId)
        ),
        key=lambda v: (v["skuId"], v["userId"]),
    )
    chunk, next_token = page(items, default=100, maximum=1000)
    views = [view(v) for v in chunk]
    answer: dict = {
        "kind": "licensing#licenseAssignmentList",
        "etag": etag({"items": [v["etags"] for v in views]}),
    }
    if views:
        answer["items"] = views
    if next_token:
        answer["nextPageToken"] = next_token
    return ok(answer)


@bp.get("/sku/<skuId>/users")
@api_method("licensing.licenseAssignments.listForProductAndSku")
def list_for_sku(productId: str, skuId: str) -> Response:  # noqa: N803
    _sku(productId, skuId)
    return _list(productId, skuId)


@bp.get("/users")
@api_method("licensing.licenseAssignments.listForProduct")
def list_for_product(productId: str) -> Response:  # noqa: N803
    license_catalog.product(productId)
    return _list(productId, None)
