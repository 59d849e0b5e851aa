"""resellernotify.register / unregister / getwatchdetails through google-api-python-client."""

from __future__ import annotations

import pytest
from googleapiclient.errors import HttpError

from .helpers import ORDER, error_of
from .push_receiver import events, our_customer, register, service_account
from .schema import assert_schema

ORDER_RO = ORDER + ".readonly"


def test_register_gives_the_topic_and_lists_the_accounts(world, sandbox):
    # Given two service accounts of the reseller's project
    first, second = service_account(world, "first"), service_account(world, "second")
    notify = world.service("reseller", "v1").resellernotify()
    # When the admin registers both
    answer = notify.register(serviceAccountEmailAddress=first["client_email"]).execute()
    again = notify.register(serviceAccountEmailAddress=second["client_email"]).execute()
    # Then the topic is named after the reseller's customer id, as Google's example is
    assert_schema("reseller", "ResellernotifyResource", answer)
    reseller_id = sandbox.state()["resellers"][0]["customer_id"]
    assert answer == again == {"topicName": f"projects/partner-watch/topics/{reseller_id}"}
    details = notify.getwatchdetails().execute()
    assert_schema("reseller", "ResellernotifyGetwatchdetailsResponse", details)
    assert details["serviceAccountEmailAddresses"] == [
        first["client_email"],
        second["client_email"],
    ]
    # When one is unregistered, only the other is left
    notify.unregister(serviceAccountEmailAddress=first["client_email"]).execute()
    assert notify.getwatchdetails().execute() == {
        "topicName": answer["topicName"],
        "serviceAccountEmailAddresses": [second["client_email"]],
    }


def test_no_watch_before_register(world):
    assert world.service("reseller", "v1").resellernotify().getwatchdetails().execute() == {}


def test_register_refuses_unknown_and_missing_accounts(world):
    notify = world.service("reseller", "v1").resellernotify()
    with pytest.raises(HttpError) as missing:
        notify.register().execute()
    assert error_of(missing)[:2] == (400, "required")
    with pytest.raises(HttpError) as unknown:
        notify.register(serviceAccountEmailAddress="nobody@x.iam.gserviceaccount.com").execute()
    assert error_of(unknown)[:2] == (400, "invalid")
    assert notify.getwatchdetails().execute() == {}


def test_readonly_scope_reads_but_cannot_register(world):
    key = service_account(world)
    notify = world.service("reseller", "v1", world.credentials([ORDER_RO])).resellernotify()
    assert notify.getwatchdetails().execute() == {}
    with pytest.raises(HttpError) as refused:
        notify.register(serviceAccountEmailAddress=key["client_email"]).execute()
    assert error_of(refused)[:2] == (403, "insufficientPermissions")


def test_events_stop_when_the_last_account_is_unregistered(world, sandbox):
    # Given a registered reseller with a subscription on its topic and a customer
    key = service_account(world)
    topic = register(world, key["client_email"])
    sandbox.post("/_sandbox/pubsub/subscriptions", {"topic": topic, "name": "pull"})
    customer = our_customer(
        world, "acme.example", {"skuId": "1010020027", "planName": "FLEXIBLE", "seats": 5}
    )
    sub = customer["subscriptions"][0]
    subscriptions = world.service("reseller", "v1").subscriptions()
    cid, sid = customer["customerId"], sub["subscriptionId"]
    subscriptions.changeSeats(
        customerId=cid, subscriptionId=sid, body={"maximumNumberOfSeats": 6}
    ).execute()
    assert [e["eventType"] for e in events(world, "pull")] == ["LICENSE_CAP_CHANGED"]
    # When the only account is unregistered, later changes publish nothing
    world.service("reseller", "v1").resellernotify().unregister(
        serviceAccountEmailAddress=key["client_email"]
    ).execute()
    subscriptions.changeSeats(
        customerId=cid, subscriptionId=sid, body={"maximumNumberOfSeats": 7}
    ).execute()
    assert len(events(world, "pull")) == 1
