"""Partial responses (`fields`), `prettyPrint` and `alt`, as Google answers them."""

from __future__ import annotations

import json

import pytest
import requests
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from .helpers import GMAIL_SEND, customer_body, error_of
from .test_gmail import raw_message

STARTER = "1010020027"


@pytest.fixture
def acme(world, reseller, customer, sandbox):
    """Given a customer with an active Starter subscription, two users and one license."""
    cid = customer["customerId"]
    sandbox.post(f"/_sandbox/customers/{cid}/accept-tos")
    reseller.subscriptions().insert(
        customerId=cid,
        body={
            "skuId": STARTER,
            "plan": {"planName": "FLEXIBLE"},
            "seats": {"maximumNumberOfSeats": 5},
        },
    ).execute()
    directory = world.service("admin", "directory_v1")
    for name in ("ann", "bob"):
        directory.users().insert(
            body={
                "primaryEmail": f"{name}@acme.example",
                "password": "s3cret-pass",
                "name": {"givenName": name.title(), "familyName": "Doe"},
            }
        ).execute()
    world.service("licensing", "v1").licenseAssignments().insert(
        productId="Google-Apps", skuId=STARTER, body={"userId": "ann@acme.example"}
    ).execute()
    return customer


def get(world, path, token, **params):
    """A raw GET as a client that is not google-api-python-client sends it."""
    return requests.get(
        world.origin + path,
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


@pytest.fixture
def token(world, sandbox):
    return sandbox.tokens(
        world.client["client_id"], world.admin, ["https://www.googleapis.com/auth/apps.order"]
    )["access_token"]


def test_reseller_answers_only_the_fields_selected(reseller, acme):
    got = (
        reseller.customers()
        .get(customerId="acme.example", fields="customerId,postalAddress/countryCode")
        .execute()
    )
    assert got == {"customerId": acme["customerId"], "postalAddress": {"countryCode": "US"}}
    listed = (
        reseller.subscriptions()
        .list(
            customerId=acme["customerId"],
            fields="subscriptions(skuId,plan(planName),seats/maximumNumberOfSeats)",
        )
        .execute()
    )
    assert listed == {
        "subscriptions": [
            {
                "skuId": STARTER,
                "plan": {"planName": "FLEXIBLE"},
                "seats": {"maximumNumberOfSeats": 5},
            }
        ]
    }


def test_directory_selects_inside_each_element_of_an_array(world, acme):
    directory = world.service("admin", "directory_v1")
    full = directory.users().list(customer=acme["customerId"]).execute()
    assert {"kind", "etag"} <= set(full)
    users = (
        directory.users()
        .list(
            customer=acme["customerId"], fields="users(primaryEmail,name/givenName),nextPageToken"
        )
        .execute()
    )
    # kind and etag go too, as they were not selected; no next page, so no token either
    assert users == {
        "users": [
            {"primaryEmail": "ann@acme.example", "name": {"givenName": "Ann"}},
            {"primaryEmail": "bob@acme.example", "name": {"givenName": "Bob"}},
        ]
    }
    # `*` selects every field at its level
    star = directory.users().list(customer=acme["customerId"], fields="users/name/*").execute()
    assert star["users"][0]["name"] == full["users"][0]["name"]


def test_licensing_and_gmail_take_fields_too(world, acme):
    licensing = world.service("licensing", "v1").licenseAssignments()
    listed = licensing.listForProduct(
        productId="Google-Apps", customerId="acme.example", fields="items/userId"
    ).execute()
    assert listed == {"items": [{"userId": "ann@acme.example"}]}
    gmail = world.service("gmail", "v1", credentials=world.credentials([GMAIL_SEND]))
    sent = (
        gmail.users()
        .messages()
        .send(userId="me", body={"raw": raw_message()}, fields="id")
        .execute()
    )
    assert list(sent) == ["id"]


def test_a_field_the_answer_does_not_have_is_refused_before_the_call_runs(reseller, sandbox):
    with pytest.raises(HttpError) as excinfo:
        reseller.customers().insert(
            body=customer_body("new.example"), fields="customerId,bogus"
        ).execute()
    status, reason, body = error_of(excinfo)
    assert (status, reason) == (400, "invalidParameter")
    assert body["error"]["message"] == "Invalid field selection bogus"
    assert body["error"]["errors"][0]["location"] == "fields"
    # Nothing was created
    domains = [c["customerDomain"] for c in sandbox.state()["customers"]]
    assert "new.example" not in domains


def test_a_malformed_selector_is_refused(world, acme):
    directory = world.service("admin", "directory_v1")
    for mask in ("users(primaryEmail", "users)", "users,,kind", "users/name/bogus"):
        with pytest.raises(HttpError) as excinfo:
            directory.users().list(customer=acme["customerId"], fields=mask).execute()
        assert error_of(excinfo)[:2] == (400, "invalidParameter"), mask


def test_gmail_refuses_a_bad_selection_in_its_own_shape(world):
    gmail = world.service("gmail", "v1", credentials=world.credentials([GMAIL_SEND]))
    with pytest.raises(HttpError) as excinfo:
        gmail.users().messages().send(
            userId="me", body={"raw": raw_message()}, fields="id,bogus"
        ).execute()
    status, _, body = error_of(excinfo)
    assert (status, body["error"]["status"]) == (400, "INVALID_ARGUMENT")
    (violation,) = body["error"]["details"][0]["fieldViolations"]
    assert violation["field"] == "bogus"


def test_errors_are_not_filtered(reseller):
    with pytest.raises(HttpError) as excinfo:
        reseller.customers().get(customerId="free.example", fields="customerId").execute()
    status, reason, body = error_of(excinfo)
    assert (status, reason) == (404, "notFound") and body["error"]["message"]


def test_pretty_print_false_answers_compact_json(world, acme, token):
    path = f"/apps/reseller/v1/customers/{acme['customerId']}"
    pretty = get(world, path, token)
    compact = get(world, path, token, prettyPrint="false")
    assert "\n  " in pretty.text
    assert "\n" not in compact.text and '": ' not in compact.text
    assert compact.json() == pretty.json()
    # errors too
    missing = get(world, "/apps/reseller/v1/customers/free.example", token, prettyPrint="false")
    assert missing.status_code == 404 and "\n" not in missing.text


def test_alt_json_is_the_only_format(world, acme, token):
    path = f"/apps/reseller/v1/customers/{acme['customerId']}"
    assert get(world, path, token, alt="json").status_code == 200
    media = get(world, path, token, alt="media")
    assert media.status_code == 400
    assert media.json()["error"]["message"] == (
        'Unsupported alt type "media" for non byte stream request.'
    )
    other = get(world, path, token, alt="xml")
    assert other.status_code == 400 and "'alt'" in other.json()["error"]["message"]


def test_fields_apply_to_each_call_inside_a_batch(world, reseller, acme):
    directory = world.service("admin", "directory_v1")
    results = {}

    def collect(request_id, response, exception):
        results[request_id] = exception or response

    batch = BatchHttpRequest(callback=collect, batch_uri=world.origin + "/batch")
    batch.add(
        reseller.customers().get(customerId="acme.example", fields="customerDomain"), request_id="c"
    )
    batch.add(
        directory.users().list(customer=acme["customerId"], fields="users/primaryEmail"),
        request_id="u",
    )
    batch.add(reseller.customers().get(customerId="acme.example"), request_id="whole")
    batch.add(reseller.customers().get(customerId="acme.example", fields="nope"), request_id="bad")
    batch.execute()
    assert results["c"] == {"customerDomain": "acme.example"}
    assert results["u"] == {
        "users": [{"primaryEmail": "ann@acme.example"}, {"primaryEmail": "bob@acme.example"}]
    }
    assert results["whole"]["customerId"] == acme["customerId"]
    assert isinstance(results["bad"], HttpError) and results["bad"].resp.status == 400


def test_the_control_api_is_not_filtered(world, sandbox):
    answer = requests.get(
        world.origin + "/_sandbox/state?fields=resellers&prettyPrint=false", timeout=10
    )
    assert {"resellers", "projects"} <= set(json.loads(answer.text))
