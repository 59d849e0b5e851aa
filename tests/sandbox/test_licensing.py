"""License Manager: assignments for the reseller's customers."""

from __future__ import annotations

import pytest
from googleapiclient.errors import HttpError

from .helpers import error_of
from .schema import assert_schema

STARTER, STANDARD = "1010020027", "1010020028"
PRODUCT = "Google-Apps"


@pytest.fixture
def licensing(world, reseller, customer, sandbox):
    """Given a customer with a 2-seat annual Starter subscription and three users."""
    sandbox.post(f"/_sandbox/customers/{customer['customerId']}/accept-tos")
    reseller.subscriptions().insert(
        customerId=customer["customerId"],
        body={
            "skuId": STARTER,
            "plan": {"planName": "ANNUAL_YEARLY_PAY"},
            "seats": {"numberOfSeats": 2},
        },
    ).execute()
    directory = world.service("admin", "directory_v1")
    for name in ("ann", "bob", "cat"):
        directory.users().insert(
            body={
                "primaryEmail": f"{name}@acme.example",
                "password": "s3cret-pass",
                "name": {"givenName": name, "familyName": "Doe"},
            }
        ).execute()
    return world.service("licensing", "v1").licenseAssignments()


def assign(licensing, user, sku=STARTER):
    return licensing.insert(productId=PRODUCT, skuId=sku, body={"userId": user}).execute()


def test_insert_get_delete(licensing):
    assigned = assign(licensing, "ann@acme.example")
    assert_schema("licensing", "LicenseAssignment", assigned)
    assert (assigned["skuId"], assigned["userId"], assigned["productId"]) == (
        STARTER,
        "ann@acme.example",
        PRODUCT,
    )
    got = licensing.get(productId=PRODUCT, skuId=STARTER, userId="ann@acme.example").execute()
    assert got["skuName"] == "Google Workspace Business Starter"
    assert (
        licensing.delete(productId=PRODUCT, skuId=STARTER, userId="ann@acme.example").execute()
        == {}
    )
    with pytest.raises(HttpError) as excinfo:
        licensing.get(productId=PRODUCT, skuId=STARTER, userId="ann@acme.example").execute()
    assert error_of(excinfo)[:2] == (404, "notFound")
    with pytest.raises(HttpError) as excinfo:
        licensing.delete(productId=PRODUCT, skuId=STARTER, userId="ann@acme.example").execute()
    assert error_of(excinfo)[:2] == (404, "notFound")


def test_seats_cap_assignments_and_a_second_assignment_is_refused(licensing):
    assign(licensing, "ann@acme.example")
    with pytest.raises(HttpError) as excinfo:
        assign(licensing, "ann@acme.example")
    assert error_of(excinfo)[:2] == (412, "conditionNotMet")
    assign(licensing, "bob@acme.example")
    with pytest.raises(HttpError) as excinfo:
        assign(licensing, "cat@acme.example")
    assert error_of(excinfo)[:2] == (412, "conditionNotMet")


def test_no_subscription_for_the_sku_is_refused(licensing):
    with pytest.raises(HttpError) as excinfo:
        assign(licensing, "ann@acme.example", sku=STANDARD)
    assert error_of(excinfo)[:2] == (412, "conditionNotMet")


def test_list_for_product_and_sku(licensing, customer):
    assign(licensing, "bob@acme.example")
    assign(licensing, "ann@acme.example")
    by_sku = licensing.listForProductAndSku(
        productId=PRODUCT, skuId=STARTER, customerId="acme.example"
    ).execute()
    assert_schema("licensing", "LicenseAssignmentList", by_sku)
    assert [i["userId"] for i in by_sku["items"]] == ["ann@acme.example", "bob@acme.example"]
    first = licensing.listForProduct(
        productId=PRODUCT, customerId=customer["customerId"], maxResults=1
    ).execute()
    assert len(first["items"]) == 1 and first["nextPageToken"]
    second = licensing.listForProduct(
        productId=PRODUCT,
        customerId=customer["customerId"],
        maxResults=1,
        pageToken=first["nextPageToken"],
    ).execute()
    assert second["items"][0]["userId"] == "bob@acme.example" and "nextPageToken" not in second


def test_another_resellers_users_are_forbidden(licensing, sandbox):
    sandbox.post(
        "/_sandbox/resellers", {"domain": "rival.example", "admin_email": "a@rival.example"}
    )
    sandbox.post(
        "/_sandbox/customers",
        {
            "reseller": "rival.example",
            "customerDomain": "theirs.example",
            "admin_email": "boss@theirs.example",
        },
    )
    with pytest.raises(HttpError) as excinfo:
        assign(licensing, "boss@theirs.example")
    assert error_of(excinfo)[:2] == (403, "forbidden")
    with pytest.raises(HttpError) as excinfo:
        licensing.listForProduct(productId=PRODUCT, customerId="theirs.example").execute()
    assert error_of(excinfo)[:2] == (403, "forbidden")


def test_patch_reassigns_to_another_sku(licensing, reseller, customer):
    reseller.subscriptions().insert(
        customerId=customer["customerId"],
        body={
            "skuId": STANDARD,
            "plan": {"planName": "FLEXIBLE"},
            "seats": {"maximumNumberOfSeats": 5},
        },
    ).execute()
    assign(licensing, "ann@acme.example")
    moved = licensing.patch(
        productId=PRODUCT, skuId=STARTER, userId="ann@acme.example", body={"skuId": STANDARD}
    ).execute()
    assert moved["skuId"] == STANDARD
    with pytest.raises(HttpError) as excinfo:
        licensing.get(productId=PRODUCT, skuId=STARTER, userId="ann@acme.example").execute()
    assert error_of(excinfo)[0] == 404
