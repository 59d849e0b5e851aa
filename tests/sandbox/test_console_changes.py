"""Changes made outside the API (Admin console, Google, the clock) and the events they publish."""

from __future__ import annotations

import pytest
from googleapiclient.errors import HttpError

from .helpers import error_of
from .push_receiver import events, our_customer, register, service_account

DAY = 24 * 3600
STARTER = "1010020027"


@pytest.fixture
def watched(world, sandbox):
    """Given a registered reseller and a pull subscription "events" on its topic."""
    topic = register(world, service_account(world)["client_email"])
    sandbox.post("/_sandbox/pubsub/subscriptions", {"topic": topic, "name": "events"})
    return world


def console(sandbox, domain, body, expect=200, sku=STARTER):
    return sandbox.post(f"/_sandbox/customers/{domain}/subscriptions/{sku}/console", body, expect)


def get(world, customer_id, subscription_id):
    return (
        world.service("reseller", "v1")
        .subscriptions()
        .get(customerId=customer_id, subscriptionId=subscription_id)
        .execute()
    )


def test_seats_of_a_flexible_plan_may_go_down(watched, sandbox):
    made = our_customer(
        watched, "a.example", {"skuId": STARTER, "planName": "FLEXIBLE", "seats": 5}
    )
    answer = console(sandbox, "a.example", {"seats": 2})
    assert answer["seats"]["maximumNumberOfSeats"] == 2
    sub = made["subscriptions"][0]
    assert (
        get(watched, made["customerId"], sub["subscriptionId"])["seats"]["maximumNumberOfSeats"]
        == 2
    )
    [event] = events(watched, "events")
    assert (event["eventType"], event["subscriptionId"]) == (
        "LICENSE_CAP_CHANGED",
        sub["subscriptionId"],
    )


def test_a_bad_console_request_changes_nothing(watched, sandbox):
    our_customer(watched, "b.example", {"skuId": STARTER, "planName": "ANNUAL", "seats": 5})
    before = sandbox.state()["subscriptions"]
    console(sandbox, "b.example", {"seats": 3}, expect=400)  # annual seats only go up
    console(sandbox, "b.example", {"seats": 6, "delete": True}, expect=400)
    console(sandbox, "b.example", {"suspend": "BILLING"}, expect=400)
    console(sandbox, "b.example", {"transfer_to": "nobody.example"}, expect=404)
    console(sandbox, "b.example", {"delete": True}, expect=404, sku="1010020028")
    assert sandbox.state()["subscriptions"] == before
    assert events(watched, "events") == []


def test_plan_change_gives_a_new_subscription_id(watched, sandbox):
    made = our_customer(watched, "c.example", {"skuId": STARTER, "planName": "ANNUAL", "seats": 5})
    old = made["subscriptions"][0]["subscriptionId"]
    answer = console(sandbox, "c.example", {"plan": "FLEXIBLE"})
    assert answer["plan"]["planName"] == "FLEXIBLE" and answer["subscriptionId"] != old
    assert answer["seats"]["maximumNumberOfSeats"] == 5
    [event] = events(watched, "events")
    assert event["eventType"] == "PRICE_PLAN_SWITCHED"
    assert (event["subscriptionId"], event["previousSubscriptionId"]) == (
        answer["subscriptionId"],
        old,
    )


def test_renewal_type_set_in_the_console(watched, sandbox):
    our_customer(watched, "r.example", {"skuId": STARTER, "planName": "ANNUAL", "seats": 5})
    answer = console(sandbox, "r.example", {"renewal": "CANCEL"})
    assert answer["renewalSettings"]["renewalType"] == "CANCEL"
    assert [e["eventType"] for e in events(watched, "events")] == ["RENEWAL_SETTING_CHANGED"]


def test_google_suspends_and_only_google_lifts_it(watched, sandbox):
    made = our_customer(
        watched, "d.example", {"skuId": STARTER, "planName": "FLEXIBLE", "seats": 5}
    )
    sub = made["subscriptions"][0]
    answer = console(sandbox, "d.example", {"suspend": "OTHER"})
    assert (answer["status"], answer["suspensionReasons"]) == ("SUSPENDED", ["OTHER"])
    with pytest.raises(HttpError) as refused:
        watched.service("reseller", "v1").subscriptions().activate(
            customerId=made["customerId"], subscriptionId=sub["subscriptionId"]
        ).execute()
    assert error_of(refused)[0] == 412
    assert console(sandbox, "d.example", {"activate": True})["status"] == "ACTIVE"
    assert [e["eventType"] for e in events(watched, "events")] == ["SUSPENDED", "ACTIVATED"]


def test_transfer_to_direct_takes_the_customer_away(watched, sandbox):
    made = our_customer(
        watched, "e.example", {"skuId": STARTER, "planName": "FLEXIBLE", "seats": 5}
    )
    sub = made["subscriptions"][0]
    assert console(sandbox, "e.example", {"transfer_to": "direct"})["reseller"] is None
    reseller = watched.service("reseller", "v1")
    view = reseller.customers().get(customerId="e.example").execute()
    assert set(view) == {"kind", "customerId", "customerDomain", "customerType"}
    with pytest.raises(HttpError) as refused:
        get(watched, made["customerId"], sub["subscriptionId"])
    assert error_of(refused)[0] == 403
    [event] = events(watched, "events")
    assert (event["eventType"], event["cancellationReason"]) == ("CANCELLED", "RELATIONSHIP_ENDED")


def test_transfer_to_another_reseller(watched, sandbox):
    sandbox.post(
        "/_sandbox/resellers", {"domain": "other.example", "admin_email": "a@other.example"}
    )
    our_customer(watched, "f.example", {"skuId": STARTER, "planName": "FLEXIBLE", "seats": 5})
    assert (
        console(sandbox, "f.example", {"transfer_to": "other.example"})["reseller"]
        == "other.example"
    )
    assert [e["eventType"] for e in events(watched, "events")] == ["CANCELLED"]


def test_delete_removes_the_subscription(watched, sandbox):
    made = our_customer(
        watched, "g.example", {"skuId": STARTER, "planName": "FLEXIBLE", "seats": 5}
    )
    sub = made["subscriptions"][0]
    assert console(sandbox, "g.example", {"delete": True})["deleted"] == sub["subscriptionId"]
    with pytest.raises(HttpError) as gone:
        get(watched, made["customerId"], sub["subscriptionId"])
    assert error_of(gone)[0] == 404
    [event] = events(watched, "events")
    assert (event["eventType"], event["cancellationReason"]) == ("CANCELLED", "SERVICE_TERMINATED")


@pytest.mark.parametrize(
    ("renewal", "plan", "seats", "status", "event"),
    [
        ("AUTO_RENEW_YEARLY_PAY", "ANNUAL_YEARLY_PAY", {"numberOfSeats": 5}, "ACTIVE", "RENEWED"),
        ("RENEW_CURRENT_USERS_MONTHLY_PAY", "ANNUAL", {"numberOfSeats": 1}, "ACTIVE", "RENEWED"),
        ("SWITCH_TO_PAY_AS_YOU_GO", "FLEXIBLE", {"maximumNumberOfSeats": 5}, "ACTIVE", "RENEWED"),
        ("CANCEL", "ANNUAL", {"numberOfSeats": 5}, "SUSPENDED", "CANCELLED"),
    ],
)
def test_clock_renews_at_the_end_of_the_commitment(
    watched, sandbox, renewal, plan, seats, status, event
):
    made = our_customer(watched, "h.example", {"skuId": STARTER, "planName": "ANNUAL", "seats": 5})
    console(sandbox, "h.example", {"renewal": renewal})
    end = made["subscriptions"][0]["plan"]["commitmentInterval"]["endTime"]
    sandbox.post("/_sandbox/clock", {"advance_seconds": 366 * DAY})
    now = get(watched, made["customerId"], made["subscriptions"][0]["subscriptionId"])
    assert (now["plan"]["planName"], now["status"]) == (plan, status)
    assert {k: v for k, v in now["seats"].items() if k != "licensedNumberOfSeats"} == dict(
        seats, kind="subscriptions#seats"
    )
    if status == "ACTIVE" and plan != "FLEXIBLE":
        assert now["plan"]["commitmentInterval"]["startTime"] == end
    if renewal == "CANCEL":
        assert now["suspensionReasons"] == ["RENEWAL_WITH_TYPE_CANCEL"]
    last = events(watched, "events")[-1]
    assert last["eventType"] == event
    assert last["eventTime"] == _rfc(end)


def test_clock_ends_a_trial(watched, sandbox):
    made = our_customer(watched, "t.example", {"skuId": STARTER, "planName": "TRIAL", "seats": 5})
    end = made["subscriptions"][0]["trialSettings"]["trialEndTime"]
    sandbox.post("/_sandbox/clock", {"advance_seconds": 31 * DAY})
    [event] = events(watched, "events")
    assert (event["eventType"], event["status"], event["eventTime"]) == (
        "SUSPENDED",
        "SUSPENDED",
        _rfc(end),
    )
    now = get(watched, made["customerId"], made["subscriptions"][0]["subscriptionId"])
    assert now["suspensionReasons"] == ["TRIAL_ENDED"]


def _rfc(epoch_ms: str) -> str:
    from datetime import UTC, datetime

    moment = datetime.fromtimestamp(int(epoch_ms) / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def test_overview_page_shows_the_topic_and_pending_events(watched, sandbox):
    our_customer(watched, "o.example", {"skuId": STARTER, "planName": "FLEXIBLE", "seats": 5})
    console(sandbox, "o.example", {"seats": 4})
    page = sandbox.http.get(sandbox.url + "/_sandbox/", timeout=10).text
    assert "projects/partner-watch/topics/" in page
    assert "LICENSE_CAP_CHANGED o.example" in page
