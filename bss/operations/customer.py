"""Customer operations: update, transfer from another reseller, and sync locally (create is in
customer_create)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import EmailStr, Field, field_validator

from bss.errors import PermanentGoogleError
from bss.operations import rules
from bss.operations.base import Operation, Params, StepContext
from bss.operations.common import (
    ANNUAL_PLANS,
    DOMAIN_PATTERN,
    CustomerRef,
    PurchaseOrderId,
    SkuId,
    find_customer,
    find_subscription,
    is_partial_view,
    list_subscriptions,
    product_of,
    subscription_summary,
)

ADDRESS_NAMES = {
    "contact_name": "contactName",
    "organization_name": "organizationName",
    "postal_code": "postalCode",
    "country_code": "countryCode",
    "address_line1": "addressLine1",
    "address_line2": "addressLine2",
    "address_line3": "addressLine3",
    "locality": "locality",
    "region": "region",
}


class PostalAddress(Params):
    contact_name: str = Field(min_length=1, max_length=100)
    organization_name: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country_code: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2, e.g. US")
    address_line1: str | None = Field(default=None, max_length=200)
    address_line2: str | None = Field(default=None, max_length=200)
    address_line3: str | None = Field(default=None, max_length=200)
    locality: str | None = Field(default=None, max_length=100)
    region: str | None = Field(default=None, max_length=100)

    def to_google(self) -> dict[str, str]:
        return {g: v for f, g in ADDRESS_NAMES.items() if (v := getattr(self, f)) is not None}


Phone = Field(
    default=None,
    max_length=40,
    pattern=r"^\+[0-9 ()-]{4,39}$",
    description="With '+' and the country code",
)


class CustomerCreate(Params):
    domain: str = Field(
        pattern=DOMAIN_PATTERN, max_length=253, description="The customer's primary domain"
    )
    alternate_email: EmailStr = Field(description="A contact address not on the customer's domain")
    postal_address: PostalAddress
    phone_number: str | None = Phone
    customer_type: Literal["domain", "team"] = "domain"

    @field_validator("domain", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower().strip() if isinstance(v, str) else v

    @staticmethod
    def cross_checks(data: dict[str, Any], at: str = "") -> list[rules.Problem]:
        return rules.customer(data, at)

    def to_google(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "customerDomain": self.domain,
            "alternateEmail": str(self.alternate_email),
            "postalAddress": self.postal_address.to_google(),
            "customerType": self.customer_type,
        }
        if self.phone_number:
            body["phoneNumber"] = self.phone_number
        return body


class CustomerUpdate(Params):
    customer: CustomerRef
    alternate_email: EmailStr | None = None
    phone_number: str | None = Phone
    postal_address: PostalAddress | None = None

    @staticmethod
    def cross_checks(data: dict[str, Any], at: str = "") -> list[rules.Problem]:
        return rules.something_to_change(data, at)

    def changes(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.alternate_email is not None:
            body["alternateEmail"] = str(self.alternate_email)
        if self.phone_number is not None:
            body["phoneNumber"] = self.phone_number
        if self.postal_address is not None:
            body["postalAddress"] = self.postal_address.to_google()
        return body


def update_customer(ctx: StepContext) -> dict[str, Any]:
    """Read the customer, then patch only the fields that differ (patching is idempotent)."""
    p: CustomerUpdate = ctx.params
    current = find_customer(ctx, p.customer)
    wanted = p.changes()
    address = {k: v for k, v in (current.get("postalAddress") or {}).items() if k != "kind"}
    differs = {
        k: v
        for k, v in wanted.items()
        if (address if k == "postalAddress" else current.get(k)) != v
    }
    cid = current["customerId"]
    if not differs:
        ctx.log("The customer already has these details at Google; nothing to change.")
        return {"customerId": cid, "changed": []}
    ctx.gateway.call(
        "reseller.customers.patch",
        lambda svc: svc.customers().patch(customerId=cid, body=differs),
    )
    return {"customerId": cid, "changed": sorted(differs)}


CUSTOMER_UPDATE = Operation(
    name="customer.update",
    summary="Change a customer's contact email, phone or postal address.",
    params_model=CustomerUpdate,
    steps=(("customer", update_customer),),
    result=lambda cp: {
        "customer_id": cp["customer"]["customerId"],
        "changed": cp["customer"]["changed"],
    },
)


class TransferSubscription(Params):
    sku_id: SkuId
    plan: Literal["ANNUAL_MONTHLY_PAY", "ANNUAL_YEARLY_PAY", "FLEXIBLE"] = "FLEXIBLE"
    seats: int = Field(ge=1, le=50000)
    purchase_order_id: PurchaseOrderId | None = None


class CustomerTransfer(CustomerCreate):
    transfer_token: str = Field(
        min_length=4, max_length=200, description="The customer's transfer token (from its admin)"
    )
    subscriptions: list[TransferSubscription] = Field(default_factory=list, max_length=20)

    @staticmethod
    def cross_checks(data: dict[str, Any], at: str = "") -> list[rules.Problem]:
        return rules.customer(data, at) + rules.one_per_sku(data, at)


def transfer_customer(ctx: StepContext) -> dict[str, Any]:
    """customers.get: ours already (done), another reseller's (insert with the token), or none."""
    p: CustomerTransfer = ctx.params
    found = ctx.gateway.get_or_none(
        "reseller.customers.get", lambda svc: svc.customers().get(customerId=p.domain)
    )
    if found is None:
        raise PermanentGoogleError(
            f"Google has no customer {p.domain} to transfer.",
            status=404,
            reason="notFound",
            method="reseller.customers.get",
            hint="The domain is free: create the customer with customer.create instead.",
        )
    if not is_partial_view(found):
        ctx.log(f"{p.domain} is already our customer; the transfer was done before.")
        return {"customerId": found["customerId"], "transferred": False}
    moved = ctx.gateway.call(
        "reseller.customers.insert",
        lambda svc: svc.customers().insert(body=p.to_google(), customerAuthToken=p.transfer_token),
    )
    return {"customerId": moved["customerId"], "transferred": True}


def transfer_subscriptions(ctx: StepContext) -> dict[str, Any]:
    """Each subscription, unless the customer already has its SKU with us."""
    p: CustomerTransfer = ctx.params
    cid = ctx.checkpoint["customer"]["customerId"]
    out = []
    for want in p.subscriptions:
        existing = find_subscription(ctx, cid, want.sku_id)
        if existing is None:
            seats_key = "numberOfSeats" if want.plan in ANNUAL_PLANS else "maximumNumberOfSeats"
            body: dict[str, Any] = {
                "skuId": want.sku_id,
                "plan": {"planName": want.plan},
                "seats": {seats_key: want.seats},
            }
            if want.purchase_order_id:
                body["purchaseOrderId"] = want.purchase_order_id

            def insert(svc: Any, b: dict[str, Any] = body) -> Any:
                return svc.subscriptions().insert(
                    customerId=cid, body=b, customerAuthToken=p.transfer_token
                )

            existing = ctx.gateway.call("reseller.subscriptions.insert", insert)
        out.append(subscription_summary(existing))
    return {"subscriptions": out}


CUSTOMER_TRANSFER = Operation(
    name="customer.transfer",
    summary="Transfer a customer from another reseller with its transfer token, then each "
    "subscription.",
    params_model=CustomerTransfer,
    steps=(("customer", transfer_customer), ("subscriptions", transfer_subscriptions)),
    result=lambda cp: {
        "customer_id": cp["customer"]["customerId"],
        "transferred": cp["customer"]["transferred"],
        "subscriptions": cp["subscriptions"]["subscriptions"],
    },
)


class CustomerSync(Params):
    customer: CustomerRef


def _all_pages(ctx: StepContext, method: str, request_of: Any, key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:

        def get_page(svc: Any, t: str | None = token) -> Any:
            return request_of(svc, t)

        page = ctx.gateway.call(method, get_page)
        items.extend(page.get(key) or [])
        token = page.get("nextPageToken")
        if not token:
            return items


def sync_customer(ctx: StepContext) -> dict[str, Any]:
    """Read the customer, its subscriptions, users and licenses, and store them locally."""
    p: CustomerSync = ctx.params
    customer = find_customer(ctx, p.customer)
    cid = customer["customerId"]
    subscriptions = list_subscriptions(ctx, cid)
    users = _all_pages(
        ctx,
        "directory.users.list",
        lambda svc, t: svc.users().list(customer=cid, maxResults=500, pageToken=t),
        "users",
    )
    licenses: list[dict[str, Any]] = []
    for sku in sorted({s["skuId"] for s in subscriptions if s.get("skuId")}):
        try:
            product = product_of(sku)
        except KeyError:
            continue  # a SKU we do not sell has no license listing we know of
        licenses += _all_pages(
            ctx,
            "licensing.licenseAssignments.listForProductAndSku",
            lambda svc, t, s=sku, pr=product: svc.licenseAssignments().listForProductAndSku(
                productId=pr, skuId=s, customerId=customer["customerDomain"], pageToken=t
            ),
            "items",
        )
    user_rows = [
        {
            "primaryEmail": u.get("primaryEmail"),
            "id": u.get("id"),
            "isAdmin": u.get("isAdmin", False),
            "suspended": u.get("suspended", False),
            "name": u.get("name"),
        }
        for u in users
    ]
    license_rows = [
        {"userId": lic.get("userId"), "skuId": lic.get("skuId"), "productId": lic.get("productId")}
        for lic in licenses
    ]
    ctx.store.save_mirror(
        customer, subscriptions=subscriptions, users=user_rows, licenses=license_rows
    )
    return {
        "customerId": cid,
        "domain": customer.get("customerDomain"),
        "subscriptions": len(subscriptions),
        "users": len(user_rows),
        "licenses": len(license_rows),
    }


CUSTOMER_SYNC = Operation(
    name="customer.sync",
    summary="Mirror a customer's subscriptions, users and licenses locally.",
    params_model=CustomerSync,
    steps=(("sync", sync_customer),),
    result=lambda cp: {
        "customer_id": cp["sync"]["customerId"],
        "domain": cp["sync"]["domain"],
        "subscriptions": cp["sync"]["subscriptions"],
        "users": cp["sync"]["users"],
        "licenses": cp["sync"]["licenses"],
    },
)

__all__ = [
    "CUSTOMER_SYNC",
    "CUSTOMER_TRANSFER",
    "CUSTOMER_UPDATE",
    "CustomerCreate",
    "PostalAddress",
]
