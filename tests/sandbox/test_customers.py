"""Reseller API customers through the unmodified google-api-python-client."""

from __future__ import annotations

import pytest
from googleapiclient.errors import HttpError

from .helpers import customer_body, error_of
from .schema import assert_schema


def test_free_domain_is_404_then_insert_creates_the_customer(world):
    # Given a reseller's stored refresh token and the reseller service on the sandbox
    reseller = world.service("reseller", "v1")

    # When we look up a domain nobody manages
    with pytest.raises(HttpError) as excinfo:
        reseller.customers().get(customerId="x.example").execute()

    # Then Google says 404 notFound
    status, reason, body = error_of(excinfo)
    assert (status, reason) == (404, "notFound")
    # in the Reseller API's older error shape, without a "status"
    assert "status" not in body["error"]
    assert list(body["error"]) == ["errors", "code", "message"]

    # When we create it
    created = reseller.customers().insert(body=customer_body("x.example")).execute()

    # Then it has a Google customer id and reads back in full
    assert created["customerId"].startswith("C0")
    assert created["kind"] == "reseller#customer"
    fetched = reseller.customers().get(customerId=created["customerId"]).execute()
    assert fetched["postalAddress"]["postalCode"] == "94043"
    assert fetched == reseller.customers().get(customerId="x.example").execute()


def test_customer_matches_the_discovery_schema(reseller, customer):
    assert_schema("reseller", "Customer", customer)
    assert customer["postalAddress"]["kind"] == "customers#address"


@pytest.mark.parametrize(
    "change",
    [
        {"customerDomain": None},
        {"customerDomain": "not a domain"},
        {"alternateEmail": None},
        {"alternateEmail": "boss@new.example"},
        {"alternateEmail": "boss@mail.new.example"},
        {"phoneNumber": "650-253-0000"},
        {"postalAddress": {"contactName": "A", "organizationName": "B", "countryCode": "US"}},
        {"postalAddress": {"contactName": "A", "postalCode": "1", "countryCode": "US"}},
        {"postalAddress": {"organizationName": "B", "postalCode": "1", "countryCode": "US"}},
        {"postalAddress": {"contactName": "A", "organizationName": "B", "postalCode": "1"}},
    ],
)
def test_insert_enforces_required_fields_and_the_alternate_email_rule(reseller, change):
    body = customer_body("new.example")
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    with pytest.raises(HttpError) as excinfo:
        reseller.customers().insert(body=body).execute()
    status, reason, _ = error_of(excinfo)
    assert status == 400 and reason in ("invalid", "required")


def test_inserting_our_own_customer_again_is_a_conflict(reseller, customer):
    with pytest.raises(HttpError) as excinfo:
        reseller.customers().insert(body=customer_body("acme.example")).execute()
    assert error_of(excinfo)[:2] == (409, "duplicate")


def test_patch_and_update_change_contact_details(reseller, customer):
    cid = customer["customerId"]
    patched = (
        reseller.customers()
        .patch(customerId=cid, body={"postalAddress": {"locality": "Paris"}})
        .execute()
    )
    assert patched["postalAddress"]["locality"] == "Paris"
    assert patched["postalAddress"]["postalCode"] == "94043"
    with pytest.raises(HttpError) as excinfo:
        reseller.customers().patch(
            customerId=cid, body={"alternateEmail": "x@acme.example"}
        ).execute()
    assert error_of(excinfo)[0] == 400
    body = customer_body("acme.example", alternateEmail="new@else.example")
    del body["phoneNumber"]
    updated = reseller.customers().update(customerId="acme.example", body=body).execute()
    assert updated["alternateEmail"] == "new@else.example" and "phoneNumber" not in updated


def test_other_resellers_customers_are_read_partially_and_not_writable(world, reseller, sandbox):
    sandbox.post(
        "/_sandbox/resellers", {"domain": "rival.example", "admin_email": "a@rival.example"}
    )
    theirs = sandbox.post(
        "/_sandbox/customers", {"reseller": "rival.example", "customerDomain": "theirs.example"}
    )
    view = reseller.customers().get(customerId=theirs["customerId"]).execute()
    assert view == {
        "kind": "reseller#customer",
        "customerId": theirs["customerId"],
        "customerDomain": "theirs.example",
        "customerType": "domain",
    }
    with pytest.raises(HttpError) as excinfo:
        reseller.customers().patch(
            customerId="theirs.example", body={"phoneNumber": "+1"}
        ).execute()
    assert error_of(excinfo)[:2] == (403, "forbidden")
    with pytest.raises(HttpError) as excinfo:
        reseller.customers().insert(body=customer_body("theirs.example")).execute()
    assert error_of(excinfo)[:2] == (409, "duplicate")


def test_only_reseller_admins_may_call_and_only_while_access_is_on(world, reseller, sandbox):
    sandbox.post(
        f"/_sandbox/resellers/{world.reseller}/users",
        {"email": "clerk@reseller.example", "admin": False},
    )
    clerk = world.service(
        "reseller", "v1", credentials=world.credentials(user="clerk@reseller.example")
    )
    with pytest.raises(HttpError) as excinfo:
        clerk.customers().get(customerId="x.example").execute()
    assert error_of(excinfo)[:2] == (403, "forbidden")

    sandbox.call("PATCH", f"/_sandbox/resellers/{world.reseller}", {"api_access": False})
    with pytest.raises(HttpError) as excinfo:
        reseller.customers().get(customerId="x.example").execute()
    assert error_of(excinfo)[:2] == (403, "domainCannotUseApis")
