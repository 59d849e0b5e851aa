"""Reseller API subscriptions: plans, seats, ToS, suspension, deletion, paging, transfers."""

from __future__ import annotations

import pytest
from googleapiclient.errors import HttpError

from .helpers import LICENSING, ORDER, error_of
from .schema import assert_schema

STARTER, STANDARD, VAULT = "1010020027", "1010020028", "Google-Vault"


def annual(seats=5, sku=STARTER, plan="ANNUAL_MONTHLY_PAY"):
    return {"skuId": sku, "plan": {"planName": plan}, "seats": {"numberOfSeats": seats}}


def flexible(seats=5, sku=STARTER, plan="FLEXIBLE"):
    return {"skuId": sku, "plan": {"planName": plan}, "seats": {"maximumNumberOfSeats": seats}}


def insert(reseller, customer, body, **kwargs):
    return (
        reseller.subscriptions()
        .insert(customerId=customer["customerId"], body=body, **kwargs)
        .execute()
    )


def call(reseller, name, customer, sub, **kwargs):
    method = getattr(reseller.subscriptions(), name)
    return method(
        customerId=customer["customerId"], subscriptionId=sub["subscriptionId"], **kwargs
    ).execute()


def refused(excinfo):
    status, reason, _ = error_of(excinfo)
    return status, reason


def accept_tos(sandbox, customer):
    return sandbox.post(f"/_sandbox/customers/{customer['customerId']}/accept-tos")


def test_new_subscription_waits_for_tos_and_reads_annual_monthly_as_annual(
    reseller, customer, sandbox
):
    # When we buy an annual plan paid monthly
    sub = insert(reseller, customer, annual(seats=5))

    # Then Google answers ANNUAL, suspended until the customer accepts the terms
    assert sub["plan"]["planName"] == "ANNUAL"
    assert sub["plan"]["isCommitmentPlan"] is True
    assert (sub["status"], sub["suspensionReasons"]) == ("SUSPENDED", ["PENDING_TOS_ACCEPTANCE"])
    assert sub["seats"] == {
        "kind": "subscriptions#seats",
        "numberOfSeats": 5,
        "licensedNumberOfSeats": 0,
    }
    assert_schema("reseller", "Subscription", sub)

    # When the customer's admin accepts the terms
    assert accept_tos(sandbox, customer)["activated"] == [sub["subscriptionId"]]

    # Then it is ACTIVE
    again = call(reseller, "get", customer, sub)
    assert again["status"] == "ACTIVE" and "suspensionReasons" not in again


def test_suspended_subscriptions_refuse_changes(reseller, customer):
    sub = insert(reseller, customer, annual())
    with pytest.raises(HttpError) as excinfo:
        call(reseller, "changeSeats", customer, sub, body={"numberOfSeats": 9})
    assert refused(excinfo) == (400, "badRequest")


@pytest.fixture
def active(reseller, customer, sandbox):
    """Given a customer who has accepted Google's terms."""
    accept_tos(sandbox, customer)
    return customer


def test_annual_seats_only_go_up(reseller, active):
    sub = insert(reseller, active, annual(seats=5))
    assert (
        call(reseller, "changeSeats", active, sub, body={"numberOfSeats": 8})["seats"][
            "numberOfSeats"
        ]
        == 8
    )
    with pytest.raises(HttpError) as excinfo:
        call(reseller, "changeSeats", active, sub, body={"numberOfSeats": 7})
    assert refused(excinfo) == (400, "invalid")
    with pytest.raises(HttpError) as excinfo:
        call(reseller, "changeSeats", active, sub, body={"maximumNumberOfSeats": 20})
    assert excinfo.value.resp.status == 400


def test_flexible_uses_maximum_number_of_seats(reseller, active):
    with pytest.raises(HttpError) as excinfo:
        insert(
            reseller,
            active,
            {"skuId": STARTER, "plan": {"planName": "FLEXIBLE"}, "seats": {"numberOfSeats": 5}},
        )
    assert excinfo.value.resp.status == 400
    sub = insert(reseller, active, flexible(seats=5))
    assert sub["plan"] == {"planName": "FLEXIBLE", "isCommitmentPlan": False}
    down = call(reseller, "changeSeats", active, sub, body={"maximumNumberOfSeats": 2})
    assert down["seats"]["maximumNumberOfSeats"] == 2


def test_trial_is_limited_to_ten_seats_and_ends_with_the_clock(reseller, active, sandbox):
    with pytest.raises(HttpError) as excinfo:
        insert(reseller, active, flexible(seats=11, plan="TRIAL"))
    assert refused(excinfo) == (400, "invalid")
    trial = insert(reseller, active, flexible(seats=10, plan="TRIAL"))
    assert trial["trialSettings"]["isInTrial"] is True
    sandbox.post("/_sandbox/clock", {"advance_seconds": 31 * 24 * 3600})
    ended = call(reseller, "get", active, trial)
    assert (ended["status"], ended["suspensionReasons"]) == ("SUSPENDED", ["TRIAL_ENDED"])


def test_trial_to_paid_changes_the_subscription_id(reseller, active):
    trial = insert(reseller, active, flexible(seats=3, plan="TRIAL"))
    with pytest.raises(HttpError) as excinfo:
        call(reseller, "startPaidService", active, trial)
    assert refused(excinfo) == (412, "conditionNotMet")

    paid = call(
        reseller,
        "changePlan",
        active,
        trial,
        body={"planName": "ANNUAL_YEARLY_PAY", "seats": {"numberOfSeats": 3}},
    )
    assert paid["subscriptionId"] != trial["subscriptionId"]
    assert paid["plan"]["planName"] == "ANNUAL_YEARLY_PAY"
    assert paid["trialSettings"]["isInTrial"] is True
    with pytest.raises(HttpError) as excinfo:
        call(reseller, "get", active, trial)
    assert refused(excinfo) == (404, "notFound")

    started = call(reseller, "startPaidService", active, paid)
    assert started["trialSettings"] == {"isInTrial": False}


def test_annual_cannot_change_to_flexible_before_the_commitment_ends(reseller, active):
    sub = insert(reseller, active, annual())
    with pytest.raises(HttpError) as excinfo:
        call(
            reseller,
            "changePlan",
            active,
            sub,
            body={"planName": "FLEXIBLE", "seats": {"maximumNumberOfSeats": 5}},
        )
    assert refused(excinfo) == (412, "conditionNotMet")
    renewed = call(
        reseller,
        "changeRenewalSettings",
        active,
        sub,
        body={"renewalType": "SWITCH_TO_PAY_AS_YOU_GO"},
    )
    assert renewed["renewalSettings"]["renewalType"] == "SWITCH_TO_PAY_AS_YOU_GO"


def test_suspend_and_activate(reseller, active, sandbox):
    sub = insert(reseller, active, flexible())
    suspended = call(reseller, "suspend", active, sub)
    assert (suspended["status"], suspended["suspensionReasons"]) == (
        "SUSPENDED",
        ["RESELLER_INITIATED"],
    )
    assert call(reseller, "activate", active, sub)["status"] == "ACTIVE"


def test_activate_cannot_lift_a_pending_tos(reseller, customer):
    sub = insert(reseller, customer, flexible())
    with pytest.raises(HttpError) as excinfo:
        call(reseller, "activate", customer, sub)
    assert refused(excinfo) == (412, "conditionNotMet")


def test_one_subscription_per_sku(reseller, active):
    insert(reseller, active, flexible())
    with pytest.raises(HttpError) as excinfo:
        insert(reseller, active, flexible())
    assert refused(excinfo) == (409, "duplicate")


def test_switching_sku_moves_licenses_and_changes_the_id(world, reseller, active):
    sub = insert(reseller, active, flexible(seats=5))
    directory = world.service("admin", "directory_v1")
    licensing = world.service("licensing", "v1")
    directory.users().insert(
        body={
            "primaryEmail": "ann@acme.example",
            "password": "s3cret-pass",
            "name": {"givenName": "Ann", "familyName": "Lee"},
        }
    ).execute()
    licensing.licenseAssignments().insert(
        productId="Google-Apps", skuId=STARTER, body={"userId": "ann@acme.example"}
    ).execute()
    switched = insert(
        reseller, active, flexible(seats=5, sku=STANDARD), action="switch", sourceSkuId=STARTER
    )
    assert switched["skuId"] == STANDARD and switched["subscriptionId"] != sub["subscriptionId"]
    assert switched["seats"]["licensedNumberOfSeats"] == 1
    assert (
        licensing.licenseAssignments()
        .get(productId="Google-Apps", skuId=STANDARD, userId="ann@acme.example")
        .execute()
    )


def test_licensed_seats_come_from_the_license_manager(world, reseller, active):
    sub = insert(reseller, active, annual(seats=2))
    directory = world.service("admin", "directory_v1")
    licensing = world.service("licensing", "v1", credentials=world.credentials([LICENSING]))
    for name in ("ann", "bob"):
        directory.users().insert(
            body={
                "primaryEmail": f"{name}@acme.example",
                "password": "s3cret-pass",
                "name": {"givenName": name, "familyName": "Doe"},
            }
        ).execute()
        licensing.licenseAssignments().insert(
            productId="Google-Apps", skuId=STARTER, body={"userId": f"{name}@acme.example"}
        ).execute()
    assert call(reseller, "get", active, sub)["seats"]["licensedNumberOfSeats"] == 2


def test_delete_transfer_to_direct_needs_an_admin(world, reseller, active):
    sub = insert(reseller, active, flexible())
    with pytest.raises(HttpError) as excinfo:
        call(reseller, "delete", active, sub, deletionType="transfer_to_direct")
    assert refused(excinfo) == (412, "conditionNotMet")
    with pytest.raises(HttpError) as excinfo:
        call(reseller, "delete", active, sub, deletionType="cancel")
    assert refused(excinfo) == (400, "invalid")

    directory = world.service("admin", "directory_v1")
    directory.users().insert(
        body={
            "primaryEmail": "it@acme.example",
            "password": "s3cret-pass",
            "name": {"givenName": "It", "familyName": "Admin"},
        }
    ).execute()
    directory.users().makeAdmin(userKey="it@acme.example", body={"status": True}).execute()
    assert call(reseller, "delete", active, sub, deletionType="transfer_to_direct") == ""
    # The customer is now Google's direct customer: we only see the partial view.
    view = reseller.customers().get(customerId=active["customerId"]).execute()
    assert set(view) == {"kind", "customerId", "customerDomain", "customerType"}


def test_cancel_applies_to_non_workspace_products(reseller, active):
    vault = insert(reseller, active, flexible(sku=VAULT))
    assert call(reseller, "delete", active, vault, deletionType="cancel") == ""
    listed = reseller.subscriptions().list(customerId=active["customerId"]).execute()
    assert "subscriptions" not in listed


def test_list_pages_with_page_token(reseller, sandbox):
    from .helpers import customer_body

    for index in range(5):
        cust = reseller.customers().insert(body=customer_body(f"c{index}.example")).execute()
        insert(reseller, cust, flexible())
    first = reseller.subscriptions().list(maxResults=2).execute()
    assert len(first["subscriptions"]) == 2 and first["nextPageToken"]
    seen = [s["subscriptionId"] for s in first["subscriptions"]]
    token = first["nextPageToken"]
    while token:
        page = reseller.subscriptions().list(maxResults=2, pageToken=token).execute()
        seen += [s["subscriptionId"] for s in page["subscriptions"]]
        token = page.get("nextPageToken")
    assert len(seen) == len(set(seen)) == 5
    assert_schema("reseller", "Subscriptions", first)
    prefixed = reseller.subscriptions().list(customerNamePrefix="c3").execute()
    assert [s["customerDomain"] for s in prefixed["subscriptions"]] == ["c3.example"]
    with pytest.raises(HttpError) as excinfo:
        reseller.subscriptions().list(maxResults=101).execute()
    assert excinfo.value.resp.status == 400


def test_other_resellers_customers_need_a_transfer_token(world, reseller, sandbox):
    # Given a customer another reseller manages, with a Starter subscription
    sandbox.post(
        "/_sandbox/resellers", {"domain": "rival.example", "admin_email": "admin@rival.example"}
    )
    theirs = sandbox.post(
        "/_sandbox/customers",
        {
            "reseller": "rival.example",
            "customerDomain": "moving.example",
            "subscriptions": [
                {"skuId": STARTER, "planName": "FLEXIBLE", "seats": {"maximumNumberOfSeats": 4}}
            ],
        },
    )
    cid = theirs["customerId"]

    # Then we see only a partial view and cannot act on it
    assert set(reseller.customers().get(customerId="moving.example").execute()) == {
        "kind",
        "customerId",
        "customerDomain",
        "customerType",
    }
    with pytest.raises(HttpError) as excinfo:
        reseller.subscriptions().list(customerId=cid).execute()
    assert refused(excinfo) == (403, "forbidden")
    with pytest.raises(HttpError) as excinfo:
        reseller.customers().insert(
            body={**_contact("moving.example")}, customerAuthToken="wrong"
        ).execute()
    assert refused(excinfo) == (403, "forbidden")

    # When the customer gives us a transfer token
    token = sandbox.post(f"/_sandbox/customers/{cid}/transfer-token")["customerAuthToken"]
    transferable = reseller.subscriptions().list(customerId=cid, customerAuthToken=token).execute()
    assert transferable["subscriptions"][0]["transferInfo"]["minimumTransferableSeats"] == 0
    moved = (
        reseller.customers()
        .insert(body=_contact("moving.example"), customerAuthToken=token)
        .execute()
    )
    sub = insert(reseller, moved, flexible(seats=4), customerAuthToken=token)

    # Then the customer and its subscription are ours, active
    assert reseller.customers().get(customerId=cid).execute()["alternateEmail"]
    assert sub["status"] == "ACTIVE"
    listed = reseller.subscriptions().list(customerId=cid).execute()["subscriptions"]
    assert [s["subscriptionId"] for s in listed] == [sub["subscriptionId"]]


def _contact(domain):
    from .helpers import customer_body

    return customer_body(domain)


def test_reseller_scope_is_needed(world, customer):
    reseller = world.service("reseller", "v1", credentials=world.credentials([LICENSING]))
    with pytest.raises(HttpError) as excinfo:
        reseller.subscriptions().list().execute()
    assert refused(excinfo) == (403, "insufficientPermissions")
    readonly = world.service("reseller", "v1", credentials=world.credentials([ORDER + ".readonly"]))
    assert "kind" in readonly.subscriptions().list().execute()
