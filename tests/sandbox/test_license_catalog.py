"""The License Manager knows Google's whole product and SKU list, resold here or not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from googleapiclient.errors import HttpError

from bss.sandbox.license_catalog import PRODUCTS, SKUS

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
    assert set(PRODUCTS) == {product for product, _ in SKUS.values()}


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
