"""Directory users.update / users.patch, customers.get and groups.list, as GAM calls them."""

from __future__ import annotations

import pytest
from google.auth.exceptions import RefreshError
from googleapiclient.errors import HttpError

from .helpers import GMAIL_SEND, USER, error_of
from .schema import assert_schema
from .test_gmail import raw_message

AUTH = "https://www.googleapis.com/auth/"
CUSTOMER_RO = AUTH + "admin.directory.customer.readonly"
GROUP_RO = AUTH + "admin.directory.group.readonly"


def new_user(email, password="s3cret-pass"):  # noqa: S107
    return {
        "primaryEmail": email,
        "password": password,
        "name": {"givenName": "Ann", "familyName": "Lee"},
    }


@pytest.fixture
def directory(world, customer):
    """Given a customer of ours with one user, ann@acme.example."""
    service = world.service("admin", "directory_v1")
    service.users().insert(body=new_user("ann@acme.example")).execute()
    return service


@pytest.fixture
def rival(sandbox):
    """Given another reseller's customer, theirs.example, with a user."""
    sandbox.post(
        "/_sandbox/resellers", {"domain": "rival.example", "admin_email": "a@rival.example"}
    )
    return sandbox.post(
        "/_sandbox/customers",
        {
            "reseller": "rival.example",
            "customerDomain": "theirs.example",
            "admin_email": "boss@theirs.example",
        },
    )


def test_suspend_and_unsuspend_with_update(directory):
    suspended = (
        directory.users().update(userKey="ann@acme.example", body={"suspended": True}).execute()
    )
    assert_schema("directory", "User", suspended)
    assert (suspended["suspended"], suspended["suspensionReason"]) == (True, "ADMIN")
    again = directory.users().get(userKey="ann@acme.example").execute()
    assert again["suspended"] is True and again["name"]["givenName"] == "Ann"

    restored = (
        directory.users().update(userKey="ann@acme.example", body={"suspended": False}).execute()
    )
    assert restored["suspended"] is False and "suspensionReason" not in restored


def test_patch_merges_a_name_and_recomputes_the_full_name(directory):
    patched = (
        directory.users()
        .patch(
            userKey="ann@acme.example",
            body={"name": {"familyName": "Smith"}, "id": "999", "isAdmin": True},
        )
        .execute()
    )
    assert patched["name"] == {"givenName": "Ann", "familyName": "Smith", "fullName": "Ann Smith"}
    # read-only fields in the body are ignored, as Google does
    assert patched["isAdmin"] is False and patched["id"] != "999"
    with pytest.raises(HttpError) as excinfo:
        directory.users().patch(
            userKey="ann@acme.example", body={"name": {"givenName": " "}}
        ).execute()
    assert error_of(excinfo)[:2] == (400, "invalid")


def test_rename_moves_the_user_and_a_taken_address_is_a_duplicate(directory):
    directory.users().insert(body=new_user("bob@acme.example")).execute()
    with pytest.raises(HttpError) as excinfo:
        directory.users().update(
            userKey="ann@acme.example", body={"primaryEmail": "bob@acme.example"}
        ).execute()
    assert error_of(excinfo)[:2] == (409, "duplicate")

    renamed = (
        directory.users()
        .update(userKey="ann@acme.example", body={"primaryEmail": "ann.lee@acme.example"})
        .execute()
    )
    assert renamed["primaryEmail"] == "ann.lee@acme.example"
    assert directory.users().get(userKey=renamed["id"]).execute()["primaryEmail"] == (
        "ann.lee@acme.example"
    )
    with pytest.raises(HttpError) as excinfo:
        directory.users().get(userKey="ann@acme.example").execute()
    assert error_of(excinfo)[0] == 404


def test_password_rules_and_a_change_kills_gmail_tokens(world, directory, sandbox):
    # Given ann holds a refresh token with a Gmail scope
    ann_gmail = world.credentials([GMAIL_SEND], user="ann@acme.example")
    gmail = world.service("gmail", "v1", credentials=ann_gmail)
    gmail.users().messages().send(userId="me", body={"raw": raw_message()}).execute()

    # When an admin sets a password that is too short, Google refuses it
    with pytest.raises(HttpError) as excinfo:
        directory.users().update(userKey="ann@acme.example", body={"password": "short"}).execute()
    assert error_of(excinfo)[:2] == (400, "invalid")

    # When an admin changes the password
    changed = (
        directory.users()
        .update(
            userKey="ann@acme.example",
            body={"password": "n3w-secret-pass", "changePasswordAtNextLogin": True},
        )
        .execute()
    )
    assert changed["changePasswordAtNextLogin"] is True and "password" not in changed

    # Then her Gmail refresh token is dead
    ann_gmail.token = None
    with pytest.raises(RefreshError):
        world.service("gmail", "v1", credentials=ann_gmail).users().messages().send(
            userId="me", body={"raw": raw_message()}
        ).execute()


def test_update_refuses_another_resellers_user(directory, rival):
    with pytest.raises(HttpError) as excinfo:
        directory.users().update(userKey="boss@theirs.example", body={"suspended": True}).execute()
    assert error_of(excinfo)[:2] == (403, "forbidden")


def test_customers_get_my_customer_and_our_customers_id(world, customer, rival):
    service = world.service("admin", "directory_v1", credentials=world.credentials([CUSTOMER_RO]))
    mine = service.customers().get(customerKey="my_customer").execute()
    assert_schema("directory", "Customer", mine)
    assert mine["kind"] == "admin#directory#customer" and mine["customerDomain"] == world.reseller

    theirs = service.customers().get(customerKey=customer["customerId"]).execute()
    assert_schema("directory", "Customer", theirs)
    assert (theirs["id"], theirs["customerDomain"], theirs["alternateEmail"]) == (
        customer["customerId"],
        "acme.example",
        customer["alternateEmail"],
    )
    assert theirs["postalAddress"]["countryCode"] == "US"
    assert theirs["customerCreationTime"].endswith("Z")

    with pytest.raises(HttpError) as excinfo:
        service.customers().get(customerKey=rival["customerId"]).execute()
    assert error_of(excinfo)[:2] == (403, "forbidden")
    with pytest.raises(HttpError) as excinfo:
        service.customers().get(customerKey="not-an-id").execute()
    assert error_of(excinfo)[:2] == (400, "badRequest")


def test_customers_get_needs_a_customer_scope(world):
    service = world.service("admin", "directory_v1", credentials=world.credentials([USER]))
    with pytest.raises(HttpError) as excinfo:
        service.customers().get(customerKey="my_customer").execute()
    assert error_of(excinfo)[:2] == (403, "insufficientPermissions")


def test_groups_of_a_user_is_googles_empty_list(world, directory, rival):
    groups = world.service("admin", "directory_v1", credentials=world.credentials([GROUP_RO]))
    answer = groups.groups().list(userKey="ann@acme.example").execute()
    assert_schema("directory", "Groups", answer)
    assert answer["kind"] == "admin#directory#groups" and "groups" not in answer
    assert "etag" in answer
    assert "groups" not in groups.groups().list(customer="my_customer").execute()
    assert "groups" not in groups.groups().list(domain="acme.example").execute()

    with pytest.raises(HttpError) as excinfo:
        groups.groups().list(userKey="boss@theirs.example").execute()
    assert error_of(excinfo)[:2] == (403, "forbidden")
    with pytest.raises(HttpError) as excinfo:
        groups.groups().list(userKey="ghost@acme.example").execute()
    assert error_of(excinfo)[:2] == (400, "invalid")
