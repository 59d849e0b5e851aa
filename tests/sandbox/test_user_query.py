"""users.list searches as Google's "Search for users" guide says: query, orderBy, sortOrder."""

from __future__ import annotations

import pytest
from googleapiclient.errors import HttpError

from .helpers import error_of

PEOPLE = [
    # email, given, family
    ("ann.lee@acme.example", "Ann", "Lee"),
    ("annabel@acme.example", "Annabel", "Smith"),
    ("bob@acme.example", "Bob", "Lee"),
    ("carol@acme.example", "Carol", "Jones"),
]


@pytest.fixture
def users(world, customer):
    """Given four users of our customer: Bob suspended, Carol a super admin in /Sales/East,
    Annabel archived in /Salesforce."""
    directory = world.service("admin", "directory_v1").users()
    for email, given, family in PEOPLE:
        directory.insert(
            body={
                "primaryEmail": email,
                "password": "s3cret-pass",
                "name": {"givenName": given, "familyName": family},
            }
        ).execute()
    directory.patch(userKey="bob@acme.example", body={"suspended": True}).execute()
    directory.makeAdmin(userKey="carol@acme.example", body={"status": True}).execute()
    directory.patch(userKey="carol@acme.example", body={"orgUnitPath": "/Sales/East"}).execute()
    directory.patch(
        userKey="annabel@acme.example", body={"archived": True, "orgUnitPath": "/Salesforce"}
    ).execute()
    return directory


def listed(users, **params) -> list[str]:
    answer = users.list(domain="acme.example", **params).execute()
    return [u["primaryEmail"] for u in answer.get("users", [])]


def test_boolean_fields_filter_and_take_any_case(users):
    assert listed(users, query="isSuspended=true") == ["bob@acme.example"]
    # GAM writes Python's booleans: isSuspended=True
    assert listed(users, query="isSuspended=False") == [
        "ann.lee@acme.example",
        "annabel@acme.example",
        "carol@acme.example",
    ]
    assert listed(users, query="isAdmin=true") == ["carol@acme.example"]
    assert listed(users, query="isArchived=true") == ["annabel@acme.example"]
    assert listed(users, query="isDelegatedAdmin=true isEnrolledIn2Sv=false") == []


def test_text_fields_match_exactly_by_word_or_by_prefix(users):
    # = is the whole value, any case
    assert listed(users, query="givenName=ann") == ["ann.lee@acme.example"]
    assert listed(users, query="name='Bob Lee'") == ["bob@acme.example"]
    # : is a word of the value; * makes the last word a prefix
    assert listed(users, query="familyName:lee") == ["ann.lee@acme.example", "bob@acme.example"]
    assert listed(users, query="givenName:Ann") == ["ann.lee@acme.example"]
    assert listed(users, query="givenName:'Ann*'") == [
        "ann.lee@acme.example",
        "annabel@acme.example",
    ]
    assert listed(users, query="email:bob*") == ["bob@acme.example"]
    assert listed(users, query="email=carol@acme.example") == ["carol@acme.example"]
    # a bare word is looked for in givenName, familyName and email
    assert listed(users, query="jones") == ["carol@acme.example"]


def test_clauses_are_anded(users):
    assert listed(users, query="familyName:Lee isSuspended=false") == ["ann.lee@acme.example"]
    assert listed(users, query="familyName:Lee givenName:Carol") == []


def test_org_unit_path_takes_the_unit_and_the_units_below_it(users):
    assert listed(users, query="orgUnitPath='/Sales'") == ["carol@acme.example"]
    assert listed(users, query="orgUnitPath=/sales/east") == ["carol@acme.example"]
    assert listed(users, query="orgUnitPath=/") == [e for e, _, _ in PEOPLE]


def test_a_field_documented_but_held_by_nobody_matches_nobody(users):
    assert listed(users, query="orgTitle:Manager") == []


@pytest.mark.parametrize(
    "query",
    [
        "suspended=true",  # the User field, not a search field
        "isSuspended:true",  # booleans take = only
        "isAdmin=maybe",
        "name:Bo*",  # no prefix search on name
        "givenName:'Ann",  # an unclosed quote
        "Employee.id=7",  # no custom schemas
    ],
)
def test_a_query_google_cannot_read_is_400_invalid_input(users, query):
    with pytest.raises(HttpError) as excinfo:
        listed(users, query=query)
    status, reason, body = error_of(excinfo)
    assert (status, reason) == (400, "invalid")
    assert body["error"]["message"] == "Invalid Input: query"


def test_order_by_and_sort_order(users):
    assert listed(users, orderBy="givenName", sortOrder="DESCENDING") == [
        "carol@acme.example",
        "bob@acme.example",
        "annabel@acme.example",
        "ann.lee@acme.example",
    ]
    assert listed(users, orderBy="familyName")[:2] == ["carol@acme.example", "ann.lee@acme.example"]
    assert listed(users, orderBy="email", sortOrder="DESCENDING")[0] == "carol@acme.example"


def test_show_deleted_and_the_public_view(users):
    users.delete(userKey="bob@acme.example").execute()
    # the sandbox forgets a deleted user at once, so there are none to show
    assert listed(users, showDeleted=True) == []
    public = users.list(domain="acme.example", viewType="domain_public").execute()["users"]
    assert [u["primaryEmail"] for u in public][0] == "ann.lee@acme.example"
    assert all("isAdmin" not in u and "suspended" not in u for u in public)
