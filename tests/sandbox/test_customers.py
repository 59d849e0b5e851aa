"""Reseller API customers through the unmodified google-api-python-client."""

from __future__ import annotations

import pytest
from googleapiclient.errors import HttpError

from .helpers import customer_body, error_of


def test_free_domain_is_404_then_insert_creates_the_customer(world):
    # Given a reseller's stored refresh token and the reseller service on the sandbox
    reseller = world.service("reseller", "v1")

    # When we look up a domain nobody manages
    with pytest.raises(HttpError) as excinfo:
        reseller.customers().get(customerId="x.example").execute()

    # Then Google says 404 notFound
    status, reason, body = error_of(excinfo)
    assert (status, reason) == (404, "notFound")
    assert body["error"]["status"] == "NOT_FOUND"

    # When we create it
    created = reseller.customers().insert(body=customer_body("x.example")).execute()

    # Then it has a Google customer id and reads back in full
    assert created["customerId"].startswith("C0")
    assert created["kind"] == "reseller#customer"
    fetched = reseller.customers().get(customerId=created["customerId"]).execute()
    assert fetched["postalAddress"]["postalCode"] == "94043"
    assert fetched == reseller.customers().get(customerId="x.example").execute()
