"""Billing API v1, customers: a customer and its subscriptions as Google has them, from the mirror
that Google's notifications and the reconciliation keep current, with when Google last
confirmed them."""

from __future__ import annotations

from flask import g, url_for
from flask_openapi3 import Tag

from bss import events
from bss.events import CustomerPath, CustomerPublic, CustomerSubscriptions
from web.api.blueprint import bp
from web.deps import db

TAG = Tag(name="customers", description="Customers and subscriptions as Google has them")


@bp.get("/customers/<customer>", tags=[TAG], responses={200: CustomerPublic})
def get_customer(path: CustomerPath):
    """A customer as Google has it: status (active, transferred away, deleted), how many
    subscriptions, open differences from what you ordered, and `confirmed_at`, when Google last
    confirmed it (a sync, a notification or a reconciliation).

    `customer` is the primary domain or Google's customer id. 404 for a customer none of your
    instances has seen.
    """
    view = events.customer_view(db(), distributor_id=g.distributor.id, key=path.customer.strip())
    view["subscriptions_url"] = url_for(
        "api.customer_subscriptions", customer=view["customer_id"], _external=True
    )
    return CustomerPublic.model_validate(view).model_dump(mode="json")


@bp.get("/customers/<customer>/subscriptions", tags=[TAG], responses={200: CustomerSubscriptions})
def customer_subscriptions(path: CustomerPath):
    """The customer's subscriptions as Google has them (seats, plan, renewal type, status), in
    the words of the `subscription.*` webhooks, each with its number of open differences."""
    view = events.subscriptions_view(
        db(), distributor_id=g.distributor.id, key=path.customer.strip()
    )
    return CustomerSubscriptions.model_validate(view).model_dump(mode="json")
