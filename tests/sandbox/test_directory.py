"""Directory API users for the reseller's customers."""

from __future__ import annotations

import pytest
from googleapiclient.errors import HttpError

from .helpers import error_of
from .schema import assert_schema


def new_user(email, password="s3cret-pass", given="Ann", family="Lee"):  # noqa: S107
    return {
        "primaryEmail": email,
        "password": password,
        "name": {"givenName": given, "familyName": family},
    }


@pytest.fixture
def directory(world, customer):
    return world.service("admin", "directory_v1")


def test_insert_get_and_make_admin(directory, customer):
    # When we create a user on the customer's domain
    user = directory.users().insert(body=new_user("ann@acme.example")).execute()

    # Then Google answers a User without the password, in the customer
    assert_schema("directory", "User", user)
    assert "password" not in user
    assert (user["customerId"], user["isAdmin"]) == (customer["customerId"], False)
    assert user["name"]["fullName"] == "Ann Lee"

    # When we make them an admin (the library URL-encodes the @ in userKey)
    assert (
        directory.users().makeAdmin(userKey="ann@acme.example", body={"status": True}).execute()
        == ""
    )

    # Then get shows it, by email or by id
    assert directory.users().get(userKey="ann@acme.example").execute()["isAdmin"] is True
    assert directory.users().get(userKey=user["id"]).execute()["primaryEmail"] == "ann@acme.example"


def test_a_user_that_exists_is_a_duplicate(directory):
    directory.users().insert(body=new_user("ann@acme.example")).execute()
    with pytest.raises(HttpError) as excinfo:
        directory.users().insert(body=new_user("ann@acme.example")).execute()
    assert error_of(excinfo)[:2] == (409, "duplicate")


@pytest.mark.parametrize(
    "body",
    [
        new_user("ann@acme.example", password="short"),
        new_user("ann@acme.example", password="x" * 101),
        new_user("ann@acme.example", given=""),
        new_user("ann@acme.example", family=""),
        new_user("not-an-email"),
        new_user("ann@unknown.example"),
    ],
)
def test_insert_rejects_bad_fields(directory, body):
    with pytest.raises(HttpError) as excinfo:
        directory.users().insert(body=body).execute()
    assert error_of(excinfo)[:2] == (400, "invalid")


def test_another_resellers_customer_is_forbidden(directory, sandbox):
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
        directory.users().insert(body=new_user("ann@theirs.example")).execute()
    assert error_of(excinfo)[:2] == (403, "forbidden")
    with pytest.raises(HttpError) as excinfo:
        directory.users().get(userKey="boss@theirs.example").execute()
    assert error_of(excinfo)[:2] == (403, "forbidden")


def test_unknown_user_is_404(directory):
    with pytest.raises(HttpError) as excinfo:
        directory.users().get(userKey="ghost@acme.example").execute()
    assert error_of(excinfo)[:2] == (404, "notFound")


def test_list_by_customer_id_pages(directory, customer):
    for name in ("ann", "bob", "cat"):
        directory.users().insert(body=new_user(f"{name}@acme.example")).execute()
    first = directory.users().list(customer=customer["customerId"], maxResults=2).execute()
    assert_schema("directory", "Users", first)
    assert [u["primaryEmail"] for u in first["users"]] == ["ann@acme.example", "bob@acme.example"]
    rest = (
        directory.users()
        .list(customer=customer["customerId"], maxResults=2, pageToken=first["nextPageToken"])
        .execute()
    )
    assert [u["primaryEmail"] for u in rest["users"]] == ["cat@acme.example"]
    assert "nextPageToken" not in rest
    with pytest.raises(HttpError):
        directory.users().list(customer=customer["customerId"], maxResults=501).execute()


def test_delete_removes_the_user_and_its_licenses(world, directory, customer, sandbox):
    directory.users().insert(body=new_user("ann@acme.example")).execute()
    assert directory.users().delete(userKey="ann@acme.example").execute() == ""
    with pytest.raises(HttpError) as excinfo:
        directory.users().get(userKey="ann@acme.example").execute()
    assert error_of(excinfo)[0] == 404
    assert [u["primaryEmail"] for u in sandbox.state()["users"]] == [world.admin]
