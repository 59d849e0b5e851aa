"""One runnable request per operation, for the API's documentation (Swagger's "Try it out"
sends them as they are to the demo's instance `demo`). A test validates each against its
operation, so they cannot drift from what the API accepts."""

from __future__ import annotations

from typing import Any

DOMAIN = "acme-widgets.example"
STARTER, STANDARD = "1010020027", "1010020028"
ADDRESS = {
    "contact_name": "Ada Admin",
    "organization_name": "Acme Widgets",
    "postal_code": "94043",
    "country_code": "US",
}
CUSTOMER = {"domain": DOMAIN, "alternate_email": "it@acme.example.net", "postal_address": ADDRESS}
SUB = {"customer": DOMAIN, "sku_id": STARTER}

PARAMS: dict[str, tuple[str, dict[str, Any]]] = {
    "order.create": (
        "A new customer with its first admin and 5 flexible Business Starter seats",
        {
            "customer": CUSTOMER,
            "admin": {
                "primary_email": f"ada@{DOMAIN}",
                "given_name": "Ada",
                "family_name": "Admin",
            },
            "subscriptions": [{"sku_id": STARTER, "plan": "FLEXIBLE", "seats": 5}],
            "welcome_email": {},
        },
    ),
    "customer.create": ("A new customer", CUSTOMER),
    "customer.update": (
        "A new contact address",
        {"customer": DOMAIN, "alternate_email": "billing@acme.example.net"},
    ),
    "customer.transfer": (
        "A customer moving from another reseller, with its subscription",
        {
            **CUSTOMER,
            "transfer_token": "transfer-token-from-the-customer",
            "subscriptions": [{"sku_id": STARTER, "plan": "FLEXIBLE", "seats": 5}],
        },
    ),
    "customer.sync": ("Mirror a customer locally", {"customer": DOMAIN}),
    "subscription.create": (
        "Business Standard, annual, 10 committed seats",
        {
            "customer": DOMAIN,
            "sku_id": STANDARD,
            "plan": "ANNUAL_MONTHLY_PAY",
            "seats": 10,
            "purchase_order_id": "PO-1001",
            "renewal_type": "AUTO_RENEW_MONTHLY_PAY",
        },
    ),
    "subscription.change_seats": ("12 seats (an absolute count)", {**SUB, "seats": 12}),
    "subscription.change_plan": (
        "From flexible to an annual plan of 10 seats",
        {**SUB, "plan": "ANNUAL_YEARLY_PAY", "seats": 10},
    ),
    "subscription.change_renewal": (
        "Go flexible at the end of the commitment",
        {**SUB, "renewal_type": "SWITCH_TO_PAY_AS_YOU_GO"},
    ),
    "subscription.suspend": ("Suspend", SUB),
    "subscription.activate": ("Lift our suspension", SUB),
    "subscription.start_paid_service": ("End a trial that has a paid plan", SUB),
    "subscription.cancel": (
        "Hand a Workspace subscription to Google",
        {**SUB, "deletion_type": "transfer_to_direct"},
    ),
    "user.create_admin": (
        "A second super admin (a password is generated)",
        {"primary_email": f"grace@{DOMAIN}", "given_name": "Grace", "family_name": "Hopper"},
    ),
    "license.assign": (
        "Business Starter licenses for two users",
        {**SUB, "users": [f"ada@{DOMAIN}", f"grace@{DOMAIN}"]},
    ),
    "license.revoke": ("Take a license back", {**SUB, "users": [f"grace@{DOMAIN}"]}),
}


def request_examples(instance: str = "demo") -> dict[str, dict[str, Any]]:
    """OpenAPI named examples of a job request, one per operation."""
    return {
        name: {
            "summary": f"{name}: {summary}",
            "value": {
                "instance": instance,
                "operation": name,
                "params": params,
                "external_ref": "INV-1001",
            },
        }
        for name, (summary, params) in PARAMS.items()
    }
