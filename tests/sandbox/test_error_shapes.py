"""Each API answers errors in its own JSON shape, compared with bodies Google really sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from googleapiclient.errors import HttpError

from .helpers import GMAIL_SEND, LICENSING, USER, error_of
from .test_gmail import raw_message

RECORDED = json.loads((Path(__file__).parent / "google_error_bodies.json").read_text())


def raw_body(excinfo) -> dict:
    """The error body exactly as it came over the wire (key order kept)."""
    return json.loads(excinfo.value.content)


def new_user(email: str) -> dict:
    return {
        "primaryEmail": email,
        "password": "s3cret-pass",
        "name": {"givenName": "Ann", "familyName": "Lee"},
    }


@pytest.fixture
def directory(world, customer):
    return world.service("admin", "directory_v1")


def test_a_duplicate_user_is_directorys_older_shape_byte_for_byte(directory):
    # Given a user that exists
    directory.users().insert(body=new_user("ann@acme.example")).execute()

    # When we create it again
    with pytest.raises(HttpError) as excinfo:
        directory.users().insert(body=new_user("ann@acme.example")).execute()

    # Then the body is the one Google sent, keys in the same order, and no "status"
    recorded = RECORDED["directory_duplicate_user"]
    assert excinfo.value.resp.status == recorded["status"]
    body = raw_body(excinfo)
    assert body == recorded["body"]
    assert list(body["error"]) == list(recorded["body"]["error"])
    assert list(body["error"]["errors"][0]) == ["domain", "reason", "message"]


def test_a_missing_user_in_directory_has_no_status(directory):
    with pytest.raises(HttpError) as excinfo:
        directory.users().get(userKey="ghost@acme.example").execute()
    assert raw_body(excinfo) == {
        "error": {
            "errors": [
                {"domain": "global", "reason": "notFound", "message": "Resource Not Found: userKey"}
            ],
            "code": 404,
            "message": "Resource Not Found: userKey",
        }
    }


def test_reseller_errors_have_no_status(reseller):
    with pytest.raises(HttpError) as excinfo:
        reseller.customers().get(customerId="free.example").execute()
    body = raw_body(excinfo)["error"]
    assert "status" not in body
    assert (body["code"], body["errors"][0]["reason"]) == (404, "notFound")


def test_licensing_errors_have_no_status_and_googles_messages(world, customer):
    licensing = world.service("licensing", "v1", credentials=world.credentials([LICENSING]))
    with pytest.raises(HttpError) as excinfo:
        licensing.licenseAssignments().listForProduct(
            productId="1010310003", customerId=customer["customerId"]
        ).execute()
    recorded = RECORDED["licensing_unknown_product"]
    body = raw_body(excinfo)["error"]
    assert (excinfo.value.resp.status, body["message"]) == (recorded["status"], recorded["message"])
    assert (body["errors"][0]["reason"], "status" in body) == ("invalid", False)


def test_gmail_errors_carry_status_like_the_recorded_body(world):
    gmail = world.service("gmail", "v1", credentials=world.credentials([GMAIL_SEND]))
    with pytest.raises(HttpError) as excinfo:
        gmail.users().messages().send(userId="me", body={"raw": raw_message(to=None)}).execute()
    recorded = RECORDED["gmail_recipient_required"]["body"]["error"]
    body = raw_body(excinfo)["error"]
    assert {k: body[k] for k in ("code", "message", "status")} == {
        k: recorded[k] for k in ("code", "message", "status")
    }
    assert body["errors"][0]["reason"] == recorded["errors"][0]["reason"]


def test_front_end_errors_carry_status_on_every_api(world):
    # Google's front end (credentials, enabled API, scopes) answers in the newer shape even for
    # the APIs whose own errors use the older one.
    url = world.origin + "/admin/directory/v1/users/ann@acme.example"
    missing = requests.get(url, timeout=10).json()["error"]
    assert (missing["code"], missing["status"]) == (401, "UNAUTHENTICATED")
    directory = world.service("admin", "directory_v1", credentials=world.credentials([GMAIL_SEND]))
    with pytest.raises(HttpError) as excinfo:
        directory.users().get(userKey="ann@acme.example").execute()
    status, reason, body = error_of(excinfo)
    assert (status, reason, body["error"]["status"]) == (
        403,
        "insufficientPermissions",
        "PERMISSION_DENIED",
    )
    assert body["error"]["details"][0]["reason"] == "ACCESS_TOKEN_SCOPE_INSUFFICIENT"


@pytest.mark.parametrize(
    ("method", "has_status"),
    [
        ("directory.users.get", False),
        ("licensing.licenseAssignments.get", False),
        ("gmail.users.messages.send", True),
    ],
)
def test_an_injected_fault_uses_the_called_apis_shape(world, customer, sandbox, method, has_status):
    # Given a 503 backendError fault on one method
    sandbox.post("/_sandbox/faults", {"method": method, "kind": "error", "times": 1})
    credentials = world.credentials([USER, LICENSING, GMAIL_SEND])

    # When that method is called
    with pytest.raises(HttpError) as excinfo:
        if method.startswith("directory"):
            service = world.service("admin", "directory_v1", credentials=credentials)
            service.users().get(userKey=world.admin).execute()
        elif method.startswith("licensing"):
            service = world.service("licensing", "v1", credentials=credentials)
            service.licenseAssignments().get(
                productId="Google-Apps", skuId="1010020027", userId=world.admin
            ).execute()
        else:
            service = world.service("gmail", "v1", credentials=credentials)
            service.users().messages().send(userId="me", body={"raw": raw_message()}).execute()

    # Then the error reads as that API's own: 503 backendError, "status" only on Gmail
    status, reason, body = error_of(excinfo)
    assert (status, reason) == (503, "backendError")
    assert ("status" in body["error"]) is has_status
