"""Reseller API v1: customers.get / insert / patch / update."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from bss.sandbox.api import api_method, body, caller, ok
from bss.sandbox.errors import bad_request, conflict, forbidden, not_found
from bss.sandbox.model import (
    DOMAIN_RE,
    EMAIL_RE,
    customer_view,
    new_customer,
    on_domain,
)
from bss.sandbox.state import State, current_state

bp = Blueprint("customers", __name__, url_prefix="/apps/reseller/v1")

CUSTOMER_TYPES = ("domain", "team")
ADDRESS_REQUIRED = ("contactName", "organizationName", "postalCode", "countryCode")
ADDRESS_FIELDS = ADDRESS_REQUIRED + (
    "addressLine1",
    "addressLine2",
    "addressLine3",
    "locality",
    "region",
)


def acting_reseller(state: State) -> dict:
    """The reseller whose admin is calling; Google refuses anyone else."""
    reseller = state.reseller_of(caller().user)
    if reseller is None:
        raise forbidden()
    if not reseller["api_access"]:
        raise forbidden("Domain cannot use apis.", reason="domainCannotUseApis")
    return reseller


def managed_customer(state: State, reseller: dict, key: str) -> dict:
    """A customer this reseller manages: 404 if nobody has it, 403 if someone else does."""
    customer = state.customer(key)
    if customer is None:
        raise not_found(f"Resource Not Found: {key}")
    if customer["_reseller"] != reseller["domain"]:
        raise forbidden()
    return customer


def transfer_token_valid(state: State, customer: dict, token: str | None) -> bool:
    saved = customer.get("_transfer_token")
    return bool(
        token and saved and saved["token"] == token and saved["expires_at"] > state.clock.now()
    )


def validate_contact(fields: dict) -> None:
    """Google's rules for the contact fields of a customer being created or changed."""
    domain = fields.get("customerDomain")
    alternate = fields.get("alternateEmail")
    if fields.get("customerType", "domain") not in CUSTOMER_TYPES:
        raise bad_request("Invalid Value: customerType")
    if not domain:
        raise bad_request("Required field must not be blank: customerDomain")
    if not DOMAIN_RE.match(domain.lower()):
        raise bad_request(f"Invalid Value: customerDomain {domain}")
    if fields.get("customerType", "domain") == "domain":
        if not alternate:
            raise bad_request("Required field must not be blank: alternateEmail")
        if not EMAIL_RE.match(alternate):
            raise bad_request("Invalid Value: alternateEmail")
        if on_domain(alternate, domain):
            raise bad_request("The alternate email must not be in the customer's domain.")
    phone = fields.get("phoneNumber")
    if phone and not str(phone).startswith("+"):
        raise bad_request("Invalid Value: phoneNumber must start with '+' and a country code")
    address = fields.get("postalAddress")
    if not isinstance(address, dict):
        raise bad_request("Required field must not be blank: postalAddress")
    for name in ADDRESS_REQUIRED:
        if not address.get(name):
            raise bad_request(f"Required field must not be blank: postalAddress.{name}")
    if len(str(address["countryCode"])) != 2:
        raise bad_request("Invalid Value: postalAddress.countryCode")
    for name in ADDRESS_FIELDS:
        if len(str(address.get(name) or "")) > 255:
            raise bad_request(f"Invalid Value: postalAddress.{name} is longer than 255")


def _address(raw: dict | None) -> dict:
    return {k: v for k, v in (raw or {}).items() if k in ADDRESS_FIELDS and v is not None}


@bp.get("/customers/<customerId>")
@api_method("reseller.customers.get")
def get_customer(customerId: str) -> Response:  # noqa: N803 - the discovery name
    state = current_state()
    reseller = acting_reseller(state)
    customer = state.customer(customerId)
    if customer is None:
        raise not_found(f"Resource Not Found: {customerId}")
    return ok(customer_view(customer, full=customer["_reseller"] == reseller["domain"]))


@bp.post("/customers")
@api_method("reseller.customers.insert")
def insert_customer() -> Response:
    state = current_state()
    reseller = acting_reseller(state)
    data = body()
    fields: dict[str, Any] = {
        "customerDomain": (data.get("customerDomain") or "").lower() or None,
        "customerType": data.get("customerType") or "domain",
        "alternateEmail": data.get("alternateEmail"),
        "phoneNumber": data.get("phoneNumber"),
        "postalAddress": _address(data.get("postalAddress")) if data.get("postalAddress") else None,
    }
    if fields["customerType"] == "team" and not fields["customerDomain"]:
        admin = (data.get("primaryAdmin") or {}).get("primaryEmail") or ""
        if not EMAIL_RE.match(admin):
            raise bad_request("Required field must not be blank: primaryAdmin.primaryEmail")
        fields["customerDomain"] = admin.rsplit("@", 1)[1].lower()
    validate_contact(fields)
    existing = state.customer(fields["customerDomain"])
    token = request.args.get("customerAuthToken")
    if existing is not None:
        if existing["_reseller"] == reseller["domain"]:
            raise conflict("The customer already exists.")
        if not token:
            raise conflict("The domain is already in use; a transfer needs customerAuthToken.")
        if not transfer_token_valid(state, existing, token):
            raise forbidden("Invalid customerAuthToken.")
        existing.update({k: v for k, v in fields.items() if k != "customerDomain"})
        existing["postalAddress"]["kind"] = "customers#address"
        existing["_reseller"] = reseller["domain"]
        return ok(customer_view(existing, full=True))
    customer = new_customer(
        state,
        domain=fields["customerDomain"],
        reseller=reseller["domain"],
        customer_type=fields["customerType"],
        alternate_email=fields["alternateEmail"],
        phone_number=fields["phoneNumber"],
        postal_address=fields["postalAddress"],
    )
    return ok(customer_view(customer, full=True))


def _change(customerId: str, *, replace: bool) -> Response:  # noqa: N803
    state = current_state()
    reseller = acting_reseller(state)
    customer = managed_customer(state, reseller, customerId)
    data = body()
    domain = data.get("customerDomain")
    if domain and domain.lower() != customer["customerDomain"]:
        raise bad_request("Invalid Value: customerDomain cannot be changed")
    fields = {
        k: customer.get(k)
        for k in (
            "customerDomain",
            "customerType",
            "alternateEmail",
            "phoneNumber",
            "postalAddress",
        )
    }
    for key in ("alternateEmail", "phoneNumber"):
        if replace or key in data:
            fields[key] = data.get(key)
    if replace or "postalAddress" in data:
        merged = {} if replace else dict(customer.get("postalAddress") or {})
        merged.update(_address(data.get("postalAddress")))
        fields["postalAddress"] = merged
    validate_contact(fields)
    customer.update({k: v for k, v in fields.items() if k != "customerDomain"})
    if customer.get("postalAddress"):
        customer["postalAddress"]["kind"] = "customers#address"
    return ok(customer_view(customer, full=True))


@bp.patch("/customers/<customerId>")
@api_method("reseller.customers.patch")
def patch_customer(customerId: str) -> Response:  # noqa: N803
    return _change(customerId, replace=False)


@bp.put("/customers/<customerId>")
@api_method("reseller.customers.update")
def update_customer(customerId: str) -> Response:  # noqa: N803
    return _change(customerId, replace=True)
