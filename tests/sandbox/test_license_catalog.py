"""The License Manager knows Google's whole product and SKU list, resold here or not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from googleapiclient.errors import HttpError

from bss.sandbox.license_catalog import ALIASES, PRODUCTS, SKUS

from .helpers import error_of
from .schema import assert_schema

RECORDED = json.loads((Path(__file__).parent / "google_error_bodies.json").read_text())
#: A sample of Google's published list, beyond what the Reseller catalog sells.
PUBLISHED = [
    ("Google-Apps", "1010020029"),  # Enterprise Starter
    ("Google-Apps", "Google-Apps-Unlimited"),  # G Suite Business
    ("101031", "1010310008"),  # Education Plus
    ("101033", "1010330004"),  # Voice Standard
    ("101001", "1010010001"),  # Cloud Identity
    ("101005", "1010050001"),  # Cloud Identity Premium
    ("Google-Vault", "Google-Vault-Former-Employee"),
    ("Google-Drive-storage", "Google-Drive-storage-1TB"),
    ("Google-Chrome-Device-Management", "Google-Chrome-Device-Management"),
    ("101047", "1010470003"),  # Gemini Business
]
#: Pairs GAM 7.49 asks about for every user (gamlib/glskus.py) beyond the published page.
GAM_ONLY = [
    ("101043", "1010430002"),  # Additional Storage 100GB
    ("101043", "1010430003"),  # Additional Storage 1TB
    ("101006", "1010060001"),  # Essentials, where GAM looks for it
]


@pytest.fixture
def licensing(world, customer):
    """Given a customer of ours with one user and no licenses at all."""
    world.service("admin", "directory_v1").users().insert(
        body={
            "primaryEmail": "ann@acme.example",
            "password": "s3cret-pass",
            "name": {"givenName": "Ann", "familyName": "Lee"},
        }
    ).execute()
    return world.service("licensing", "v1").licenseAssignments()


def test_the_table_holds_googles_published_skus():
    for product, sku in PUBLISHED:
        assert SKUS[sku][0] == product
    assert set(PRODUCTS) == {product for product, _ in SKUS.values()} | {p for p, _ in ALIASES}


def test_every_sku_lists_empty_and_every_get_is_404(licensing, customer):
    # GAM probes every product and SKU for every user: none may answer 400
    for sku, (product, _) in SKUS.items():
        listed = licensing.listForProductAndSku(
            productId=product, skuId=sku, customerId=customer["customerId"]
        ).execute()
        assert_schema("licensing", "LicenseAssignmentList", listed)
        assert listed["kind"] == "licensing#licenseAssignmentList" and "items" not in listed
        with pytest.raises(HttpError) as excinfo:
            licensing.get(productId=product, skuId=sku, userId="ann@acme.example").execute()
        status, reason, body = error_of(excinfo)
        assert (status, reason) == (404, "notFound"), (product, sku)
        assert body["error"]["message"] == RECORDED["licensing_no_license"]["message"]
    for product in PRODUCTS:
        listed = licensing.listForProduct(productId=product, customerId="acme.example").execute()
        assert "items" not in listed and listed["etag"]


def test_unknown_product_or_sku_is_400_invalid(licensing, customer):
    with pytest.raises(HttpError) as excinfo:
        licensing.listForProduct(productId="1010310003", customerId="acme.example").execute()
    status, reason, body = error_of(excinfo)
    assert (status, reason) == (400, "invalid")
    assert body["error"]["message"] == RECORDED["licensing_unknown_product"]["message"]
    with pytest.raises(HttpError) as excinfo:
        licensing.get(
            productId="Google-Vault", skuId="1010020027", userId="ann@acme.example"
        ).execute()
    assert error_of(excinfo)[:2] == (400, "invalid")


def test_assigning_a_sku_the_customer_holds_no_subscription_for_is_412(licensing):
    # Voice is a published SKU, but nobody sold this customer a Voice subscription
    with pytest.raises(HttpError) as excinfo:
        licensing.insert(
            productId="101033", skuId="1010330004", body={"userId": "ann@acme.example"}
        ).execute()
    assert error_of(excinfo)[:2] == (412, "conditionNotMet")


def test_gams_pairs_answer_404(licensing):
    # GAM gives up on a user's licenses when any of its pairs answers other than 404
    for product, sku in GAM_ONLY:
        with pytest.raises(HttpError) as excinfo:
            licensing.get(productId=product, skuId=sku, userId="ann@acme.example").execute()
        assert error_of(excinfo)[:2] == (404, "notFound"), (product, sku)


def test_essentials_is_one_license_under_both_product_ids(world, sandbox):
    # Given a customer of ours holding Essentials, with one user
    sandbox.post(
        "/_sandbox/customers",
        {
            "customerDomain": "essentials.example",
            "reseller": world.reseller,
            "subscriptions": [{"skuId": "1010060001", "planName": "FLEXIBLE", "seats": 2}],
        },
    )
    sandbox.post(
        "/_sandbox/customers/essentials.example/users", {"email": "eve@essentials.example"}
    )
    licensing = world.service("licensing", "v1").licenseAssignments()

    # When the license is assigned under Google-Apps, as Google's page lists it
    licensing.insert(
        productId="Google-Apps", skuId="1010060001", body={"userId": "eve@essentials.example"}
    ).execute()

    # Then GAM's 101006 finds the same license, in a get and in both listings
    got = licensing.get(
        productId="101006", skuId="1010060001", userId="eve@essentials.example"
    ).execute()
    assert (got["productId"], got["skuId"]) == ("Google-Apps", "1010060001")
    for listing in (
        licensing.listForProductAndSku(
            productId="101006", skuId="1010060001", customerId="essentials.example"
        ),
        licensing.listForProduct(productId="101006", customerId="essentials.example"),
    ):
        assert [a["userId"] for a in listing.execute()["items"]] == ["eve@essentials.example"]
    # and it cannot be assigned twice under the other id
    with pytest.raises(HttpError) as excinfo:
        licensing.insert(
            productId="101006", skuId="1010060001", body={"userId": "eve@essentials.example"}
        ).execute()
    assert error_of(excinfo)[:2] == (412, "conditionNotMet")

    # When it is revoked under 101006, it is gone under Google-Apps too
    licensing.delete(
        productId="101006", skuId="1010060001", userId="eve@essentials.example"
    ).execute()
    listed = licensing.listForProduct(productId="Google-Apps", customerId="essentials.example")
    assert "items" not in listed.execute()
