"""Customer operations."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import EmailStr, Field, field_validator, model_validator

from bss.errors import PermanentGoogleError
from bss.operations.base import Operation, Params, StepContext

DOMAIN_PATTERN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"


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
        names = {
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
        return {g: v for f, g in names.items() if (v := getattr(self, f)) is not None}


class CustomerCreate(Params):
    domain: str = Field(
        pattern=DOMAIN_PATTERN, max_length=253, description="The customer's primary domain"
    )
    alternate_email: EmailStr = Field(description="A contact address not on the customer's domain")
    postal_address: PostalAddress
    phone_number: str | None = Field(default=None, max_length=40)
    customer_type: Literal["domain", "team"] = "domain"

    @field_validator("domain", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _alternate_email_elsewhere(self) -> CustomerCreate:
        mail_domain = str(self.alternate_email).rsplit("@", 1)[-1].lower()
        if mail_domain == self.domain or mail_domain.endswith("." + self.domain):
            raise ValueError(
                "alternate_email must not be on the customer's own domain "
                f"({self.domain}): Google requires a contact address elsewhere"
            )
        return self

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


def is_partial_view(customer: dict[str, Any]) -> bool:
    """Google shows another reseller's customer with only its id, domain and type."""
    return "alternateEmail" not in customer and "postalAddress" not in customer


def ensure_customer(ctx: StepContext) -> dict[str, Any]:
    """customers.get, then customers.insert only when Google says the domain is free."""
    p: CustomerCreate = ctx.params
    found = ctx.gateway.get_or_none(
        "reseller.customers.get", lambda svc: svc.customers().get(customerId=p.domain)
    )
    if found is not None:
        if is_partial_view(found):
            raise PermanentGoogleError(
                f"{p.domain} is a Google customer of another reseller.",
                status=200,
                reason="managedByAnotherReseller",
                method="reseller.customers.get",
                hint="Transfer it with customer.transfer and the customer's transfer token.",
            )
        ctx.log(f"Customer {p.domain} already exists at Google; not creating it again.")
        return {"customerId": found["customerId"], "created": False}
    created = ctx.gateway.call(
        "reseller.customers.insert",
        lambda svc: svc.customers().insert(body=p.to_google()),
    )
    return {"customerId": created["customerId"], "created": True}


CUSTOMER_CREATE = Operation(
    name="customer.create",
    summary="Create a Google Workspace customer (checks first that the domain is free).",
    params_model=CustomerCreate,
    steps=(("customer", ensure_customer),),
    result=lambda cp: {
        "customer_id": cp["customer"]["customerId"],
        "created": cp["customer"]["created"],
    },
)
