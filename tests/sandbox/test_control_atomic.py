"""The control API checks a whole request before it changes anything: a 4xx leaves no trace."""

from __future__ import annotations

import pytest

STARTER, STANDARD = "1010020027", "1010020028"


def google_side(sandbox) -> dict:
    """What Google holds, without the clock (it moves on its own)."""
    return {k: v for k, v in sandbox.state().items() if k != "now"}


def new_customer(**overrides) -> dict:
    body = {
        "customerDomain": "acme.example",
        "reseller": "reseller.example",
        "admin_email": "boss@acme.example",
        "subscriptions": [
            {"skuId": STARTER, "planName": "FLEXIBLE", "seats": 5},
            {"skuId": STANDARD, "planName": "ANNUAL_MONTHLY_PAY", "seats": 3},
        ],
    }
    body.update(overrides)
    return body


def subscriptions(*entries: dict) -> dict:
    return {"subscriptions": [{"skuId": STARTER, "planName": "FLEXIBLE", "seats": 5}, *entries]}


@pytest.mark.parametrize(
    ("overrides", "status", "words"),
    [
        (subscriptions({"skuId": "999", "planName": "FLEXIBLE", "seats": 2}), 400, ["[1]", "999"]),
        (subscriptions({"skuId": STANDARD, "planName": "MONTHLY", "seats": 2}), 400, ["[1]"]),
        (subscriptions({"skuId": STANDARD, "planName": "TRIAL", "seats": 11}), 400, ["[1]"]),
        (subscriptions({"skuId": STANDARD, "planName": "FLEXIBLE"}), 400, ["[1]", "seats"]),
        (subscriptions({"skuId": STANDARD, "planName": "FLEXIBLE", "seats": 0}), 400, ["[1]"]),
        (subscriptions({"skuId": STARTER, "planName": "FLEXIBLE", "seats": 1}), 400, ["[1]"]),
        (subscriptions("1010020028"), 400, ["[1]"]),
        ({"subscriptions": {"skuId": STARTER}}, 400, ["subscriptions"]),
        ({"admin_email": "boss@elsewhere.example"}, 400, ["boss@elsewhere.example"]),
        ({"admin_email": "not an email@acme.example"}, 400, ["not an email"]),
        ({"admin_email": "admin@reseller.example"}, 400, ["admin@reseller.example"]),
        ({"reseller": "nobody.example"}, 404, ["nobody.example"]),
        ({"customerType": "company"}, 400, ["customerType"]),
        ({"customerDomain": "not a domain"}, 400, ["not a domain"]),
    ],
)
def test_a_bad_customer_request_leaves_nothing_behind(world, sandbox, overrides, status, words):
    # Given Google's side as it is
    before = google_side(sandbox)
    # When a customer is asked for with one bad part, after good ones
    response = sandbox.http.post(
        sandbox.url + "/_sandbox/customers", json=new_customer(**overrides), timeout=10
    )
    # Then the answer names the bad part, and no customer, user or subscription was made
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert all(word in message for word in words), message
    assert google_side(sandbox) == before


def test_an_admin_who_exists_already_is_a_conflict_with_no_trace(world, sandbox):
    # Given a customer whose admin lives on a subdomain
    sandbox.post(
        "/_sandbox/customers",
        {"customerDomain": "acme.example", "reseller": None, "admin_email": "ann@eu.acme.example"},
    )
    before = google_side(sandbox)
    # When the subdomain is made a customer with that same admin
    sandbox.post(
        "/_sandbox/customers",
        new_customer(customerDomain="eu.acme.example", admin_email="ann@eu.acme.example"),
        expect=409,
    )
    # or a reseller
    sandbox.post(
        "/_sandbox/resellers",
        {"domain": "eu.acme.example", "admin_email": "ann@eu.acme.example"},
        expect=409,
    )
    # Then nothing changed
    assert google_side(sandbox) == before


def test_a_reseller_with_a_bad_admin_email_leaves_no_customer(sandbox):
    before = google_side(sandbox)
    error = sandbox.post(
        "/_sandbox/resellers",
        {"domain": "r.example", "admin_email": "bad admin@r.example"},
        expect=400,
    )
    assert "bad admin@r.example" in error["error"]
    assert google_side(sandbox) == before


def test_a_delegation_with_bad_scopes_is_refused_whole(world, sandbox):
    before = google_side(sandbox)
    for scopes in ([{"scope": "x"}], ["", " "], "https://www.googleapis.com/auth/apps.order"):
        body = {
            "reseller": world.reseller,
            "client_id": world.client["client_id"],
            "scopes": scopes,
        }
        assert "scopes" in sandbox.post("/_sandbox/delegations", body, expect=400)["error"]
    assert google_side(sandbox) == before


def test_the_documented_shape_and_the_reseller_apis_shape_are_accepted(world, reseller, sandbox):
    # When customers are made with seats as a number (docs) and as the Reseller API's objects
    made = sandbox.post("/_sandbox/customers", new_customer(tos_accepted=False))
    sandbox.post(
        "/_sandbox/customers",
        new_customer(
            customerDomain="beta.example",
            admin_email=None,
            subscriptions=[
                {
                    "skuId": STARTER,
                    "plan": {"planName": "TRIAL"},
                    "seats": {"maximumNumberOfSeats": 4},
                },
                {"skuId": STANDARD, "plan": {"planName": "ANNUAL"}, "seats": {"numberOfSeats": 7}},
            ],
        ),
    )
    # Then our reseller reads them through the Reseller API as Google would answer
    assert made["admins"] == ["boss@acme.example"]
    seen = {}
    for domain in ("acme.example", "beta.example"):
        listed = reseller.subscriptions().list(customerId=domain).execute()["subscriptions"]
        for sub in listed:
            seats = {k: v for k, v in sub["seats"].items() if k.endswith("umberOfSeats")}
            seen[(domain, sub["skuId"])] = (sub["plan"]["planName"], seats, sub["status"])
    assert seen == {
        ("acme.example", STARTER): (
            "FLEXIBLE",
            {"maximumNumberOfSeats": 5, "licensedNumberOfSeats": 0},
            "SUSPENDED",
        ),
        ("acme.example", STANDARD): (
            "ANNUAL",
            {"numberOfSeats": 3, "licensedNumberOfSeats": 0},
            "SUSPENDED",
        ),
        ("beta.example", STARTER): (
            "TRIAL",
            {"maximumNumberOfSeats": 4, "licensedNumberOfSeats": 0},
            "ACTIVE",
        ),
        ("beta.example", STANDARD): (
            "ANNUAL",
            {"numberOfSeats": 7, "licensedNumberOfSeats": 0},
            "ACTIVE",
        ),
    }


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        ("/_sandbox/faults", {"method": "reseller.*", "status": "abc"}, "status must be"),
        ("/_sandbox/faults", {"method": "reseller.*", "status": 200}, "status must be"),
        (
            "/_sandbox/faults",
            {"method": "reseller.*", "kind": "timeout", "seconds": "x"},
            "seconds",
        ),
        ("/_sandbox/faults", {"method": "reseller.*", "reason": 5}, "reason must be a string"),
        ("/_sandbox/latency", {"seconds": 1, "method": ["reseller.*"]}, "method must be"),
        ("/_sandbox/latency", {"seconds": True}, "seconds must be"),
    ],
)
def test_bad_fault_and_latency_rules_are_refused_and_calls_keep_working(
    world, sandbox, path, body, words
):
    before = (sandbox.call("GET", "/_sandbox/faults"), google_side(sandbox))
    answer = sandbox.post(path, body, expect=400)
    assert words in answer["error"]
    assert (sandbox.call("GET", "/_sandbox/faults"), google_side(sandbox)) == before
    # The API still answers normally afterwards (a bad rule used to break every later call).
    users = world.service("admin", "directory_v1").users()
    assert users.list(customer="my_customer").execute()["kind"] == "admin#directory#users"
