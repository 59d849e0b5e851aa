"""Pub/Sub delivery of Reseller events: push (OIDC, retries, knobs) and pull (ack, redelivery)."""

from __future__ import annotations

import time

import pytest
from google.auth.transport.requests import Request
from google.oauth2 import id_token
from google.oauth2 import service_account as sa
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from .helpers import error_of
from .push_receiver import event_of, our_customer, receiver_fixture, register, service_account

PUBSUB = "https://www.googleapis.com/auth/pubsub"
receiver = pytest.fixture(receiver_fixture)


@pytest.fixture
def setup(world):
    """Given a registered reseller with one FLEXIBLE subscription: (key, topic, customer, sub)."""
    key = service_account(world)
    topic = register(world, key["client_email"])
    customer = our_customer(
        world, "acme.example", {"skuId": "1010020027", "planName": "FLEXIBLE", "seats": 5}
    )
    return key, topic, customer, customer["subscriptions"][0]


def change_seats(world, customer, sub, seats):
    world.service("reseller", "v1").subscriptions().changeSeats(
        customerId=customer["customerId"],
        subscriptionId=sub["subscriptionId"],
        body={"maximumNumberOfSeats": seats},
    ).execute()


def pubsub_service(world, key):
    creds = sa.Credentials.from_service_account_info(key, scopes=[PUBSUB])
    return build(
        "pubsub",
        "v1",
        credentials=creds,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": world.origin + "/"},
    )


def test_push_body_and_oidc_token(world, sandbox, setup, receiver):
    key, topic, customer, sub = setup
    made = sandbox.post(
        "/_sandbox/pubsub/subscriptions",
        {"topic": topic, "name": "push", "push_endpoint": receiver.url},
    )
    # When the reseller changes seats through the API
    change_seats(world, customer, sub, 7)
    [post] = receiver.wait_for(1)
    body = post["body"]
    # Then Pub/Sub's wrapped push body arrives, the event base64-encoded JSON
    assert body["subscription"] == made["name"]
    assert set(body["message"]) >= {"data", "messageId", "publishTime", "attributes"}
    event = event_of(post)
    assert event["eventType"] == "LICENSE_CAP_CHANGED"
    assert (event["customerId"], event["customerDomain"], event["subscriptionId"]) == (
        customer["customerId"],
        "acme.example",
        sub["subscriptionId"],
    )
    assert event["skuId"] == "1010020027" and event["eventTime"].endswith("Z")
    assert body["message"]["attributes"]["eventType"] == "LICENSE_CAP_CHANGED"
    # And the OIDC token verifies against the sandbox's certificates, for this endpoint
    scheme, token = post["headers"]["Authorization"].split(" ", 1)
    assert scheme == "Bearer"
    claims = id_token.verify_token(
        token, Request(), audience=receiver.url, certs_url=world.origin + "/oauth2/v1/certs"
    )
    assert claims["iss"] == "https://accounts.google.com"
    assert (claims["email"], claims["email_verified"]) == (key["client_email"], True)
    with pytest.raises(ValueError):
        id_token.verify_token(
            token,
            Request(),
            audience="https://elsewhere.example/",
            certs_url=world.origin + "/oauth2/v1/certs",
        )


def test_push_is_retried_until_a_2xx(world, sandbox, setup, receiver):
    _, topic, customer, sub = setup
    receiver.statuses = [503, 500, 429]
    sandbox.post("/_sandbox/pubsub/subscriptions", {"topic": topic, "push_endpoint": receiver.url})
    change_seats(world, customer, sub, 6)
    posts = receiver.wait_for(4)
    assert len({p["body"]["message"]["messageId"] for p in posts}) == 1
    time.sleep(0.5)
    assert len(receiver.posts) == 4  # acknowledged by the 204: not sent again


def test_duplicate_knob_delivers_twice(world, sandbox, setup, receiver):
    _, topic, customer, sub = setup
    sandbox.post(
        "/_sandbox/pubsub/subscriptions",
        {"topic": topic, "name": "dup", "push_endpoint": receiver.url},
    )
    sandbox.post("/_sandbox/pubsub/subscriptions/dup", {"duplicate": True})
    change_seats(world, customer, sub, 6)
    first, second = receiver.wait_for(2)
    assert first["body"]["message"]["messageId"] == second["body"]["message"]["messageId"]


def test_reorder_knob_holds_one_back(world, sandbox, setup, receiver):
    _, topic, customer, sub = setup
    sandbox.post(
        "/_sandbox/pubsub/subscriptions",
        {"topic": topic, "name": "reo", "push_endpoint": receiver.url},
    )
    sandbox.post("/_sandbox/pubsub/subscriptions/reo", {"reorder": 1})
    change_seats(world, customer, sub, 6)
    change_seats(world, customer, sub, 7)
    posts = receiver.wait_for(2)
    times = [event_of(p)["eventTime"] for p in posts]
    assert times == sorted(times, reverse=True)  # the later event came first


def test_paused_subscription_keeps_messages_until_resumed(world, sandbox, setup, receiver):
    _, topic, customer, sub = setup
    sandbox.post(
        "/_sandbox/pubsub/subscriptions",
        {"topic": topic, "name": "pau", "push_endpoint": receiver.url},
    )
    sandbox.post("/_sandbox/pubsub/subscriptions/pau", {"paused": True})
    change_seats(world, customer, sub, 6)
    time.sleep(0.5)
    assert receiver.posts == []
    assert len(sandbox.call("GET", "/_sandbox/pubsub/subscriptions/pau")["pending"]) == 1
    sandbox.post("/_sandbox/pubsub/subscriptions/pau", {"paused": False})
    assert event_of(receiver.wait_for(1)[0])["eventType"] == "LICENSE_CAP_CHANGED"


def test_pull_acknowledge_and_redelivery_after_the_ack_deadline(world, sandbox, setup):
    key, topic, customer, sub = setup
    subscriptions = pubsub_service(world, key).projects().subscriptions()
    name = f"projects/{world.project}/subscriptions/bss-events"
    made = subscriptions.create(
        name=name, body={"topic": topic, "ackDeadlineSeconds": 10}
    ).execute()
    assert (made["topic"], made["ackDeadlineSeconds"]) == (topic, 10)
    change_seats(world, customer, sub, 6)
    first = subscriptions.pull(subscription=name, body={"maxMessages": 10}).execute()
    [received] = first["receivedMessages"]
    # Leased: not handed out again before the deadline
    assert subscriptions.pull(subscription=name, body={"maxMessages": 10}).execute() == {}
    # Not acknowledged: back after the ack deadline, with a new ackId
    sandbox.post("/_sandbox/clock", {"advance_seconds": 11})
    [again] = subscriptions.pull(subscription=name, body={"maxMessages": 10}).execute()[
        "receivedMessages"
    ]
    assert again["message"]["messageId"] == received["message"]["messageId"]
    assert again["ackId"] != received["ackId"]
    subscriptions.acknowledge(subscription=name, body={"ackIds": [again["ackId"]]}).execute()
    sandbox.post("/_sandbox/clock", {"advance_seconds": 11})
    assert subscriptions.pull(subscription=name, body={"maxMessages": 10}).execute() == {}


def test_only_registered_service_accounts_may_subscribe(world, sandbox, setup):
    _, topic, _, _ = setup
    stranger = service_account(world, "stranger")
    subscriptions = pubsub_service(world, stranger).projects().subscriptions()
    with pytest.raises(HttpError) as refused:
        subscriptions.create(
            name=f"projects/{world.project}/subscriptions/xyz", body={"topic": topic}
        ).execute()
    assert error_of(refused)[0] == 403
    assert sandbox.call("GET", "/_sandbox/pubsub")["subscriptions"] == []
