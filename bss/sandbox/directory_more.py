"""Admin SDK Directory API: customers.get and groups.list (groups themselves are not modelled)."""

from __future__ import annotations

import re

from flask import Blueprint, Response, request

from bss.sandbox.api import api_method, caller, ok, page
from bss.sandbox.clock import rfc3339
from bss.sandbox.directory import NOT_AUTHORIZED, reachable, user_in_reach
from bss.sandbox.errors import ApiError, bad_request, forbidden, not_found
from bss.sandbox.model import etag
from bss.sandbox.state import State, current_state

bp = Blueprint("directory_more", __name__, url_prefix="/admin/directory/v1")

MY_CUSTOMER = "my_customer"
CUSTOMER_ID_RE = re.compile(r"^C[0-9a-z]{7,12}$", re.IGNORECASE)
#: The Directory's postal address fields (the Reseller's also carry ``kind``).
ADDRESS_FIELDS = (
    "contactName",
    "organizationName",
    "addressLine1",
    "addressLine2",
    "addressLine3",
    "locality",
    "region",
    "postalCode",
    "countryCode",
)


def _own_customer(state: State) -> dict | None:
    me = state.user(caller().user)
    return state.customers.get(me["customerId"]) if me else None


def customer_view(customer: dict) -> dict:
    """The Directory's Customer resource for a customer record."""
    view: dict = {
        "kind": "admin#directory#customer",
        "id": customer["customerId"],
        "customerDomain": customer["customerDomain"],
        "alternateEmail": customer.get("alternateEmail"),
        "customerCreationTime": rfc3339(float(customer.get("_created") or 0)),
        "language": customer.get("_language") or "en",
        "phoneNumber": customer.get("phoneNumber"),
    }
    address = customer.get("postalAddress") or {}
    postal = {k: address[k] for k in ADDRESS_FIELDS if address.get(k)}
    if postal:
        view["postalAddress"] = postal
    view = {k: v for k, v in view.items() if v is not None}
    view["etag"] = etag(view)
    return view


@bp.get("/customers/<customerKey>")
@api_method("directory.customers.get")
def get_customer(customerKey: str) -> Response:  # noqa: N803 - the discovery name
    state = current_state()
    if customerKey == MY_CUSTOMER:
        customer = _own_customer(state)
        if customer is None:
            raise forbidden(NOT_AUTHORIZED)
        return ok(customer_view(customer))
    if not CUSTOMER_ID_RE.match(customerKey):
        raise ApiError(400, "badRequest", "Bad Request")
    customer = state.customers.get(customerKey)
    # An id the caller does not administer reads as forbidden whether it exists or not.
    if customer is None or customer["customerId"] not in reachable(state):
        raise forbidden(NOT_AUTHORIZED)
    return ok(customer_view(customer))


def _customer_in_reach(state: State, key: str) -> dict:
    customer = _own_customer(state) if key == MY_CUSTOMER else state.customers.get(key)
    if customer is None:
        raise ApiError(400, "badRequest", "Bad Request")
    if customer["customerId"] not in reachable(state):
        raise forbidden(NOT_AUTHORIZED)
    return customer


@bp.get("/groups")
@api_method("directory.groups.list")
def list_groups() -> Response:
    state = current_state()
    customer_key, domain, user_key = (
        request.args.get("customer"),
        request.args.get("domain"),
        request.args.get("userKey"),
    )
    if not (customer_key or domain or user_key):
        raise ApiError(400, "badRequest", "Bad Request")
    if customer_key:
        _customer_in_reach(state, customer_key)
    if domain:
        customer = state.customer(domain)
        if customer is None:
            raise not_found("Domain not found.")
        if customer["customerId"] not in reachable(state):
            raise forbidden(NOT_AUTHORIZED)
    if user_key:
        try:
            user_in_reach(state, user_key)
        except ApiError as error:
            if error.code != 404:
                raise
            raise bad_request("Invalid Input: memberKey") from None
    # No groups are modelled: every user is in none, every customer has none.
    chunk, _ = page([], default=200, maximum=200)
    return ok({"kind": "admin#directory#groups", "etag": etag({"groups": chunk})})
